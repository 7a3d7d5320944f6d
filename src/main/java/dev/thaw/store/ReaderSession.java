package dev.thaw.store;

import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http2.AbstractHttp2ConnectionHandlerBuilder;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.Http2CodecUtil;
import io.netty.handler.codec.http2.Http2ConnectionAdapter;
import io.netty.handler.codec.http2.Http2ConnectionDecoder;
import io.netty.handler.codec.http2.Http2ConnectionEncoder;
import io.netty.handler.codec.http2.Http2ConnectionHandler;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2Exception;
import io.netty.handler.codec.http2.Http2Flags;
import io.netty.handler.codec.http2.Http2FrameListener;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.codec.http2.Http2Stream;
import io.netty.util.collection.IntObjectHashMap;
import io.netty.util.collection.IntObjectMap;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One Proxmox Backup Server reader session: the HTTP/2 connection (prior knowledge) that runs on a
 * TLS connection after the server answered the reader upgrade with 101. Requests are GETs on their
 * own streams, any number at once (the server allows 200; more wait in Netty's stream buffer); the
 * client's windows are as large as HTTP/2 allows, as the PBS client sets them, so that flow control
 * never holds a response back. A fault of the connection fails every request on it as retryable;
 * the session is then closed for good and a new one must be opened.
 *
 * <p>Thread-safe: {@link #get} blocks the calling thread; all protocol state is confined to the
 * connection's event loop.
 */
// Netty's channel and stream operations return futures whose failures reach this handler (a
// failed write fails the channel; a reset or closed stream fails the request's future here).
@SuppressWarnings("FutureReturnValueIgnored")
final class ReaderSession extends Http2ConnectionHandler implements Http2FrameListener {
  /** The client's stream and connection windows, as the PBS client sets them. */
  static final int WINDOW = (1 << 31) - 2;

  /**
   * The largest frame the client accepts, so the largest DATA frame the server sends: 256 KiB, not
   * the PBS client's 4 MiB. Netty's HTTP/2 reader hands a frame on only once all of it is in one
   * buffer, so a chunk in 4 MiB frames was gathered whole before it was copied out; a restore
   * through the reader at RTT 10 ms took 0.90x the time with 256 KiB frames (medians of 4), and 64
   * KiB or 1 MiB frames were no better.
   */
  static final int MAX_FRAME = 256 << 10;

  /**
   * A response read to its end: its body in {@code body}, or (a 200 with a length, asked for with a
   * pool) in {@code buffer}, the caller's reference, with {@code body} empty.
   */
  record Reply(int status, String contentType, byte[] body, Buffer buffer) {
    /** The body as text for a message: its first line, at most 300 characters. */
    String text() {
      String s =
          new String(body, 0, Math.min(body.length, 2000), java.nio.charset.StandardCharsets.UTF_8)
              .strip();
      int nl = s.indexOf('\n');
      s = nl >= 0 ? s.substring(0, nl).strip() : s;
      return s.length() > 300 ? s.substring(0, 300) + "..." : s;
    }
  }

  /** Index files downloaded in this session: their chunks may be read on it. */
  final Set<String> registered = ConcurrentHashMap.newKeySet();

  /** Held while an index is downloaded again to register its chunks in this session. */
  final Object registration = new Object();

  private final String authority;
  private final String peer;
  private final long readTimeoutNanos;
  private final long callTimeoutNanos;
  private final IntObjectMap<Pending> pending = new IntObjectHashMap<>();
  private volatile ChannelHandlerContext ctx;
  private volatile boolean open = true;
  private volatile String closeReason;
  private volatile long lastRead = System.nanoTime();
  private volatile long lastUse = System.nanoTime();
  private ScheduledFuture<?> ticker;
  private int nextStreamId = 1; // event loop only

  private ReaderSession(
      Http2ConnectionDecoder decoder,
      Http2ConnectionEncoder encoder,
      Http2Settings settings,
      String authority,
      String peer,
      long readTimeoutNanos,
      long callTimeoutNanos) {
    super(decoder, encoder, settings);
    this.authority = authority;
    this.peer = peer;
    this.readTimeoutNanos = readTimeoutNanos;
    this.callTimeoutNanos = callTimeoutNanos;
    connection()
        .addListener(
            new Http2ConnectionAdapter() {
              @Override
              public void onStreamClosed(Http2Stream stream) {
                Pending p = pending.remove(stream.id());
                if (p != null) {
                  p.future.completeExceptionally(
                      fault("the stream ended before the response was complete"));
                }
              }
            });
  }

  /**
   * A client handler for a connection to {@code peer} ("host:port", for messages).
   *
   * @param readTimeoutNanos the longest the connection may stay silent while a request waits
   * @param callTimeoutNanos the longest one request may take
   */
  static ReaderSession create(
      String authority, String peer, long readTimeoutNanos, long callTimeoutNanos) {
    return new Builder(authority, peer, readTimeoutNanos, callTimeoutNanos).build();
  }

  private static final class Builder
      extends AbstractHttp2ConnectionHandlerBuilder<ReaderSession, Builder> {
    private final String authority;
    private final String peer;
    private final long readTimeoutNanos;
    private final long callTimeoutNanos;

    Builder(String authority, String peer, long readTimeoutNanos, long callTimeoutNanos) {
      this.authority = authority;
      this.peer = peer;
      this.readTimeoutNanos = readTimeoutNanos;
      this.callTimeoutNanos = callTimeoutNanos;
      server(false);
      initialSettings(
          new Http2Settings().initialWindowSize(WINDOW).maxFrameSize(MAX_FRAME).pushEnabled(false));
      // more requests than the server's stream limit wait in a buffer instead of failing
      encoderEnforceMaxConcurrentStreams(true);
    }

    @Override
    protected ReaderSession build() {
      return super.build();
    }

    @Override
    protected ReaderSession build(
        Http2ConnectionDecoder decoder, Http2ConnectionEncoder encoder, Http2Settings settings) {
      ReaderSession s =
          new ReaderSession(
              decoder, encoder, settings, authority, peer, readTimeoutNanos, callTimeoutNanos);
      frameListener(s);
      return s;
    }
  }

  private static final class Pending {
    final CompletableFuture<Reply> future = new CompletableFuture<>();
    final long started = System.nanoTime();
    final int maxBytes;
    final BufferPool pool;

    /** The pooled buffer whose array {@link #buf} is, or null. */
    Buffer pooled;

    int status;
    String contentType;
    long expected = -1;
    byte[] buf = new byte[0];
    int len;

    Pending(int maxBytes, BufferPool pool) {
      this.maxBytes = maxBytes;
      this.pool = pool;
    }

    void append(ByteBuf data) throws IOException {
      int n = data.readableBytes();
      if ((long) len + n > maxBytes) {
        throw new IOException("the answer is larger than the " + maxBytes + " bytes it may have");
      }
      if (len + n > buf.length) {
        buf =
            Arrays.copyOf(
                buf,
                (int) Math.min(maxBytes, Math.max(len + n, Math.max(64 << 10, 2L * buf.length))));
      }
      data.getBytes(data.readerIndex(), buf, len, n);
      len += n;
    }
  }

  /** Whether requests may still be sent on this session. */
  boolean isOpen() {
    return open && ctx != null && ctx.channel().isActive();
  }

  /** Nanosecond time of the last request started on this session. */
  long lastUse() {
    return lastUse;
  }

  /** Closes the session if no request is waiting and none started for {@code idleNanos}. */
  void closeIfIdle(long idleNanos) {
    ChannelHandlerContext c = ctx;
    if (c != null) {
      c.executor()
          .execute(
              () -> {
                if (pending.isEmpty() && System.nanoTime() - lastUse > idleNanos) {
                  close();
                }
              });
    }
  }

  /**
   * GETs {@code path} (with its query) on a new stream and waits for the whole response, of at most
   * {@code maxBytes} (a larger one is refused as soon as its length or its data says so).
   *
   * @throws StoreException retryable for a fault of the connection or a timeout
   */
  Reply get(String path, int maxBytes) throws IOException {
    return get(path, maxBytes, null);
  }

  /**
   * As {@link #get(String, int)}, a successful body of known length read straight into a buffer of
   * {@code pool} ({@link Reply#buffer}). A request that fails after its buffer was taken leaves the
   * buffer to the garbage collector, not to the pool.
   */
  Reply get(String path, int maxBytes, BufferPool pool) throws IOException {
    ChannelHandlerContext c = ctx;
    if (c == null || !isOpen()) {
      throw fault("the reader session is closed");
    }
    lastUse = System.nanoTime();
    Pending p = new Pending(maxBytes, pool);
    c.executor().execute(() -> start(path, p));
    try {
      // a backstop: the ticker, once a second, ends a request past the call timeout on the event
      // loop, where the request's stream is; this wait gives it a second more than that takes
      return p.future.get(callTimeoutNanos + TimeUnit.SECONDS.toNanos(2), TimeUnit.NANOSECONDS);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof IOException io) {
        throw io;
      }
      throw new StoreException(
          "reader request to " + peer + " failed: " + e.getCause(), true, e.getCause());
    } catch (TimeoutException e) {
      c.executor().execute(() -> cancel(p));
      throw new StoreException(
          "no complete answer from "
              + peer
              + " in "
              + TimeUnit.NANOSECONDS.toSeconds(callTimeoutNanos)
              + " s",
          true,
          e);
    } catch (InterruptedException e) {
      c.executor().execute(() -> cancel(p));
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted waiting for " + peer);
    }
  }

  private void start(String path, Pending p) {
    if (!isOpen()) {
      p.future.completeExceptionally(fault("the reader session is closed"));
      return;
    }
    // 1, 3, 5, ... as the PBS client's h2 numbers them (Netty's own counter keeps 1 for h2c)
    int id = nextStreamId;
    nextStreamId += 2;
    if (id < 0) { // stream ids used up: this session is done, the next one starts afresh
      open = false;
      p.future.completeExceptionally(fault("stream ids exhausted"));
      ctx.close();
      return;
    }
    if (pending.isEmpty()) {
      lastRead = System.nanoTime(); // an idle connection has not been silent while a request waited
    }
    pending.put(id, p);
    Http2Headers h =
        new DefaultHttp2Headers()
            .method("GET")
            .scheme("https")
            .authority(authority)
            .path(path)
            .add("user-agent", "thaw");
    encoder()
        .writeHeaders(ctx, id, h, 0, true, ctx.newPromise())
        .addListener(
            f -> {
              if (!f.isSuccess()) {
                Pending q = pending.remove(id);
                if (q != null) {
                  q.future.completeExceptionally(fault("cannot send the request: " + f.cause()));
                }
              }
            });
    flush(ctx);
  }

  private void cancel(Pending p) {
    for (IntObjectMap.PrimitiveEntry<Pending> e : pending.entries()) {
      if (e.value() == p) {
        int id = e.key();
        pending.remove(id);
        cancelStream(id);
        flush(ctx);
        return;
      }
    }
  }

  /**
   * Ends stream {@code id} from this side: a RST_STREAM for a stream the server has seen, or, for a
   * request still queued in the encoder for a free stream slot, drops it unsent. Never a reset of a
   * stream the server has not seen: a RST_STREAM on an idle stream is a connection error (RFC 9113
   * 6.4), which PBS's HTTP/2 stack answers with a GOAWAY that fails every request in flight. A
   * stream already closed is left alone.
   */
  private void cancelStream(int id) {
    if (connection().stream(id) != null || id > connection().local().lastStreamCreated()) {
      encoder().writeRstStream(ctx, id, Http2Error.CANCEL.code(), ctx.newPromise());
    }
  }

  private StoreException fault(String what) {
    String why = closeReason != null ? " (" + closeReason + ")" : "";
    return new StoreException("reader session with " + peer + ": " + what + why, true);
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) throws Exception {
    super.handlerAdded(ctx); // sends the connection preface and the client's settings
    this.ctx = ctx;
    // the connection window as large as the stream windows, as the PBS client sets it
    connection()
        .local()
        .flowController()
        .incrementWindowSize(
            connection().connectionStream(), WINDOW - Http2CodecUtil.DEFAULT_WINDOW_SIZE);
    flush(ctx);
    ticker = ctx.executor().scheduleAtFixedRate(this::tick, 1, 1, TimeUnit.SECONDS);
  }

  /** Ends a connection that went silent while requests waited, and requests that took too long. */
  private void tick() {
    if (pending.isEmpty()) {
      return;
    }
    long now = System.nanoTime();
    if (now - lastRead > readTimeoutNanos) {
      closeReason = "no data for " + TimeUnit.NANOSECONDS.toSeconds(readTimeoutNanos) + " s";
      open = false;
      ctx.close();
      return;
    }
    List<Integer> late = new ArrayList<>();
    for (IntObjectMap.PrimitiveEntry<Pending> e : pending.entries()) {
      if (now - e.value().started > callTimeoutNanos) {
        late.add(e.key());
      }
    }
    for (int id : late) {
      Pending p = pending.remove(id);
      p.future.completeExceptionally(
          fault(
              "no complete answer in " + TimeUnit.NANOSECONDS.toSeconds(callTimeoutNanos) + " s"));
      cancelStream(id);
    }
    flush(ctx); // this handler's flush: the codec writes its pending frames first
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) throws Exception {
    lastRead = System.nanoTime();
    super.channelRead(ctx, msg);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) throws Exception {
    open = false;
    if (ticker != null) {
      ticker.cancel(false);
    }
    failAll("the connection closed");
    super.channelInactive(ctx);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) throws Exception {
    if (closeReason == null) {
      closeReason = String.valueOf(cause.getMessage());
    }
    open = false;
    failAll("connection fault");
    if (Http2CodecUtil.getEmbeddedHttp2Exception(cause) != null) {
      super.exceptionCaught(ctx, cause); // a protocol error: the codec answers it (GOAWAY)
    }
    // anything else (a reset connection, a TLS failure) would travel on to the pipeline's end,
    // where Netty logs it as an unhandled warning: it is handled here, by closing
    ctx.close();
  }

  private void failAll(String what) {
    if (pending.isEmpty()) {
      return;
    }
    List<Pending> all = new ArrayList<>(pending.values());
    pending.clear();
    StoreException e = fault(what);
    for (Pending p : all) {
      p.future.completeExceptionally(e);
    }
  }

  /** Closes the connection; waiting requests fail as retryable. */
  void close() {
    open = false;
    ChannelHandlerContext c = ctx;
    if (c != null) {
      c.channel().close();
    }
  }

  // ---- frames (event loop) ----

  @Override
  public void onHeadersRead(
      ChannelHandlerContext ctx,
      int streamId,
      Http2Headers headers,
      int padding,
      boolean endOfStream) {
    Pending p = pending.get(streamId);
    if (p == null) {
      return;
    }
    if (p.status == 0 && headers.status() != null) {
      try {
        p.status = Integer.parseInt(headers.status().toString());
      } catch (NumberFormatException e) {
        pending.remove(streamId);
        p.future.completeExceptionally(fault("a response without a valid status"));
        return;
      }
      if (p.status >= 100 && p.status < 200) {
        p.status = 0; // an interim response; the final one follows
        return;
      }
      CharSequence ct = headers.get("content-type");
      p.contentType = ct == null ? null : ct.toString();
      CharSequence cl = headers.get("content-length");
      if (cl != null) {
        try {
          p.expected = Long.parseLong(cl.toString());
          if (p.expected > p.maxBytes) {
            pending.remove(streamId);
            p.future.completeExceptionally(
                new StoreException(
                    "reader session with "
                        + peer
                        + ": an answer of "
                        + p.expected
                        + " bytes, larger than the "
                        + p.maxBytes
                        + " it may have",
                    false));
            cancelStream(streamId);
            return;
          }
          if (p.expected >= 0 && p.pool != null && p.status == 200) {
            p.pooled = p.pool.take((int) p.expected);
            p.buf = p.pooled.array();
          } else if (p.expected >= 0) {
            p.buf = new byte[(int) p.expected];
          }
        } catch (NumberFormatException e) {
          p.expected = -1;
        }
      }
    }
    if (endOfStream) {
      finish(streamId);
    }
  }

  @Override
  public void onHeadersRead(
      ChannelHandlerContext ctx,
      int streamId,
      Http2Headers headers,
      int streamDependency,
      short weight,
      boolean exclusive,
      int padding,
      boolean endOfStream) {
    onHeadersRead(ctx, streamId, headers, padding, endOfStream);
  }

  @Override
  public int onDataRead(
      ChannelHandlerContext ctx, int streamId, ByteBuf data, int padding, boolean endOfStream) {
    int processed = data.readableBytes() + padding; // returned to flow control at once
    Pending p = pending.get(streamId);
    if (p != null) {
      try {
        p.append(data);
      } catch (IOException e) {
        pending.remove(streamId);
        p.future.completeExceptionally(
            new StoreException("reader session with " + peer + ": " + e.getMessage(), false, e));
        cancelStream(streamId);
        return processed;
      }
      if (endOfStream) {
        finish(streamId);
      }
    }
    return processed;
  }

  private void finish(int streamId) {
    Pending p = pending.remove(streamId);
    if (p == null) {
      return;
    }
    if (p.expected >= 0 && p.expected != p.len) {
      p.future.completeExceptionally(
          fault("the response has " + p.len + " of its " + p.expected + " bytes"));
      return;
    }
    if (p.pooled != null && p.buf == p.pooled.array()) {
      p.future.complete(new Reply(p.status, p.contentType, new byte[0], p.pooled));
      return;
    }
    byte[] body = p.len == p.buf.length ? p.buf : Arrays.copyOf(p.buf, p.len);
    p.future.complete(new Reply(p.status, p.contentType, body, null));
  }

  @Override
  public void onRstStreamRead(ChannelHandlerContext ctx, int streamId, long errorCode) {
    Pending p = pending.remove(streamId);
    if (p != null) {
      Http2Error e = Http2Error.valueOf(errorCode);
      p.future.completeExceptionally(
          fault(
              "the server reset the stream ("
                  + (e != null ? e.name() : "error " + errorCode)
                  + ")"));
    }
  }

  @Override
  public void onGoAwayRead(
      ChannelHandlerContext ctx, int lastStreamId, long errorCode, ByteBuf debugData) {
    open = false; // requests above lastStreamId fail as their streams close
    Http2Error e = Http2Error.valueOf(errorCode);
    closeReason =
        "the server ended the session (GOAWAY " + (e != null ? e.name() : errorCode) + ")";
  }

  @Override
  public void onPriorityRead(
      ChannelHandlerContext ctx,
      int streamId,
      int streamDependency,
      short weight,
      boolean exclusive) {}

  @Override
  public void onSettingsAckRead(ChannelHandlerContext ctx) {}

  @Override
  public void onSettingsRead(ChannelHandlerContext ctx, Http2Settings settings) {}

  @Override
  public void onPingRead(ChannelHandlerContext ctx, long data) {}

  @Override
  public void onPingAckRead(ChannelHandlerContext ctx, long data) {}

  @Override
  public void onPushPromiseRead(
      ChannelHandlerContext ctx,
      int streamId,
      int promisedStreamId,
      Http2Headers headers,
      int padding)
      throws Http2Exception {
    throw Http2Exception.connectionError(Http2Error.PROTOCOL_ERROR, "push is disabled");
  }

  @Override
  public void onWindowUpdateRead(
      ChannelHandlerContext ctx, int streamId, int windowSizeIncrement) {}

  @Override
  public void onUnknownFrame(
      ChannelHandlerContext ctx, byte frameType, int streamId, Http2Flags flags, ByteBuf payload) {}
}
