package dev.thaw.store;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.AdaptiveRecvByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpClientUpgradeHandler;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.timeout.ReadTimeoutException;
import io.netty.handler.timeout.ReadTimeoutHandler;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.ConnectException;
import java.net.UnknownHostException;
import java.nio.channels.ClosedChannelException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import javax.net.ssl.SSLException;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * TLS connections to one Proxmox Backup Server. {@link #get} makes one HTTP/1.1 request on a
 * connection of its own (the API, such as the snapshot listing), its body read as it arrives;
 * {@link #openReader} sends the reader protocol's upgrade request and, once the server answered
 * 101, runs HTTP/2 with prior knowledge on the same connection ({@link ReaderSession}). Every
 * request carries the API token in {@code Authorization: PBSAPIToken ID:SECRET}; the header never
 * appears in a message. Connections are Netty NIO channels on one event-loop thread of this client.
 * Thread-safe.
 */
// Netty's channel operations return futures whose failures reach the pipeline (a failed write is
// fired as an exception, a closed channel as channelInactive) and fail the answer there.
@SuppressWarnings("FutureReturnValueIgnored")
final class PbsClient implements AutoCloseable {
  /** The reader protocol's name in the {@code Upgrade} header. */
  static final String READER_PROTOCOL = "proxmox-backup-reader-protocol-v1";

  /** The largest refusal of an upgrade that is read (its text goes into a message). */
  private static final int MAX_API_BODY = 1 << 20;

  /**
   * The largest buffer one socket read fills (Netty's default: 64 KiB). A reader session brings a
   * whole restore through one TLS connection, and each read passes through TLS, HTTP/2 framing and
   * the event loop once: a restore through the reader at RTT 10 ms took 0.96x the time and
   * 0.94-0.96x the CPU with reads of up to 1 MiB (paired runs); 256 KiB were slower, 4 MiB no
   * faster.
   */
  private static final int MAX_READ = 1 << 20;

  /** What the server answered instead of switching to the reader protocol. */
  static final class Rejected extends IOException {
    private static final long serialVersionUID = 1L;
    private final transient ReaderSession.Reply reply;

    Rejected(ReaderSession.Reply reply) {
      super("HTTP " + reply.status() + " " + reply.text());
      this.reply = reply;
    }

    ReaderSession.Reply reply() {
      return reply;
    }
  }

  private final PbsRepository repo;
  private final String authorization;
  private final String peer;
  private final SslContext ssl;
  private final Duration connectTimeout;
  private final Duration readTimeout;
  private final Duration callTimeout;
  private final EventLoopGroup group;

  /**
   * @param secret the API token's secret (percent-encoded on the wire as the PBS client does)
   * @param caFile PEM file of the CA certificates to trust instead of the system's, or null
   * @param fingerprint the server certificate's fingerprint to accept when validation fails, or
   *     null
   */
  PbsClient(
      PbsRepository repo,
      String secret,
      Path caFile,
      String fingerprint,
      Duration connectTimeout,
      Duration readTimeout,
      Duration callTimeout) {
    // BoringSSL (netty-tcnative) where it is available: TLS decryption then costs about a
    // quarter of the restore's CPU less than the JDK's engine; elsewhere the JDK's
    this(
        repo,
        secret,
        caFile,
        fingerprint,
        connectTimeout,
        readTimeout,
        callTimeout,
        OpenSsl.isAvailable() ? SslProvider.OPENSSL : SslProvider.JDK);
  }

  /** As above, with the given TLS implementation. */
  PbsClient(
      PbsRepository repo,
      String secret,
      Path caFile,
      String fingerprint,
      Duration connectTimeout,
      Duration readTimeout,
      Duration callTimeout,
      SslProvider tls) {
    this.repo = repo;
    this.authorization = "PBSAPIToken " + repo.authId() + ":" + encodeSecret(secret);
    this.peer = repo.host() + ":" + repo.port();
    this.connectTimeout = connectTimeout;
    this.readTimeout = readTimeout;
    this.callTimeout = callTimeout;
    try {
      // a --ca-file is read now, so that a bad one is reported before any connection; the
      // system's CAs only once a certificate the fingerprint does not match needs them
      PbsTrust.ChainValidation chain;
      if (caFile != null) {
        X509ExtendedTrustManager fromFile = PbsTrust.chainValidation(caFile);
        chain = () -> fromFile;
      } else {
        chain = () -> PbsTrust.chainValidation(null);
      }
      this.ssl =
          SslContextBuilder.forClient()
              .sslProvider(tls)
              .trustManager(new PbsTrust(chain, fingerprint))
              .endpointIdentificationAlgorithm("HTTPS")
              .build();
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalArgumentException(
          "cannot set up TLS"
              + (caFile != null ? " with --ca-file " + caFile : "")
              + ": "
              + e.getMessage(),
          e);
    }
    this.group =
        new MultiThreadIoEventLoopGroup(
            1, new DefaultThreadFactory("thaw-pbs", true), NioIoHandler.newFactory());
  }

  /**
   * Percent-encodes a token secret as the PBS client does (controls, space, {@code "#<>`?{}}, DEL
   * and non-ASCII bytes), and '%' too, so that the server's decoding gives the secret back.
   */
  static String encodeSecret(String secret) {
    StringBuilder sb = new StringBuilder();
    for (byte b : secret.getBytes(StandardCharsets.UTF_8)) {
      int c = b & 0xff;
      if (c < 0x20 || c >= 0x7f || " \"#<>`?{}%".indexOf(c) >= 0) {
        sb.append('%')
            .append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
            .append(Character.toUpperCase(Character.forDigit(c & 15, 16)));
      } else {
        sb.append((char) c);
      }
    }
    return sb.toString();
  }

  /** "host:port", for messages. */
  String peer() {
    return peer;
  }

  /**
   * One HTTP/1.1 GET of the API on a connection of its own, answered once the status line and
   * headers are in; the body is read from the answer while it arrives. PBS streams a snapshot
   * listing without a length, and on a large datastore it runs to many megabytes: its reader never
   * holds it whole. Close the answer to end the connection.
   */
  ApiAnswer get(String pathAndQuery) throws IOException {
    ApiAnswer a = new ApiAnswer();
    Channel ch =
        connect(
            p -> {
              p.addLast(new HttpClientCodec());
              p.addLast(a.new Receiver());
            });
    a.channel = ch;
    try {
      ch.writeAndFlush(request(pathAndQuery))
          .addListener(ChannelFutureListener.FIRE_EXCEPTION_ON_FAILURE);
      await(a.head);
      return a;
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
  }

  /**
   * An API answer: its status and content type, and its body as a stream of the bytes as they
   * arrive. The connection stops reading while more than {@link #PAUSE_AT} bytes wait unread, and
   * reads on once fewer than {@link #RESUME_AT} do. One thread reads the body.
   */
  final class ApiAnswer extends java.io.InputStream {
    private static final int PAUSE_AT = 8 << 20;
    private static final int RESUME_AT = 2 << 20;
    private static final Object END = new Object();

    private final CompletableFuture<Object> head = new CompletableFuture<>();

    /** Parts of the body as they arrived (byte[]), then END, or a Throwable. */
    private final java.util.concurrent.LinkedBlockingQueue<Object> parts =
        new java.util.concurrent.LinkedBlockingQueue<>();

    private final java.util.concurrent.atomic.AtomicLong unread =
        new java.util.concurrent.atomic.AtomicLong();
    private volatile boolean paused;
    private volatile int status;
    private volatile String contentType;
    private Channel channel;
    private byte[] part = new byte[0];
    private int pos;
    private boolean ended;

    int status() {
      return status;
    }

    String contentType() {
      return contentType;
    }

    /** The first {@code max} bytes of the body, for a refusal's message. */
    ReaderSession.Reply reply(int max) throws IOException {
      return new ReaderSession.Reply(status, contentType, readNBytes(max), null);
    }

    @Override
    public int read() throws IOException {
      byte[] one = new byte[1];
      return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      java.util.Objects.checkFromIndexSize(off, len, b.length);
      if (len == 0) {
        return 0;
      }
      while (pos == part.length) {
        if (ended) {
          return -1;
        }
        Object o;
        try {
          o = parts.poll(readTimeout.toMillis() + 1000, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new InterruptedIOException("interrupted reading from " + peer);
        }
        if (o == null) {
          throw new StoreException("timed out waiting for " + peer, true);
        } else if (o == END) {
          ended = true;
        } else if (o instanceof Throwable t) {
          throw failure(t);
        } else {
          part = (byte[]) o;
          pos = 0;
          if (unread.addAndGet(-part.length) < RESUME_AT && paused) {
            paused = false;
            channel.eventLoop().execute(() -> channel.config().setAutoRead(true));
          }
        }
      }
      int n = Math.min(len, part.length - pos);
      System.arraycopy(part, pos, b, off, n);
      pos += n;
      return n;
    }

    @Override
    public void close() {
      channel.close();
    }

    /** The connection's end of the answer: on its event loop. */
    final class Receiver extends io.netty.channel.ChannelInboundHandlerAdapter {
      @Override
      public void channelRead(ChannelHandlerContext ctx, Object msg) {
        try {
          if (msg instanceof io.netty.handler.codec.http.HttpResponse r) {
            status = r.status().code();
            contentType = r.headers().get(HttpHeaderNames.CONTENT_TYPE);
            head.complete(r);
          }
          if (msg instanceof io.netty.handler.codec.http.HttpContent c) {
            int n = c.content().readableBytes();
            if (n > 0) {
              if (unread.addAndGet(n) > PAUSE_AT) { // paused before the part is there to take
                paused = true;
                ctx.channel().config().setAutoRead(false);
              }
              parts.add(ByteBufUtil.getBytes(c.content()));
            }
            if (msg instanceof io.netty.handler.codec.http.LastHttpContent) {
              parts.add(END);
            }
          }
        } finally {
          io.netty.util.ReferenceCountUtil.release(msg);
        }
      }

      @Override
      public void channelInactive(ChannelHandlerContext ctx) {
        fail(new StoreException(peer + " closed the connection before it answered", true));
      }

      @Override
      public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        fail(cause);
        ctx.close();
      }

      private void fail(Throwable t) {
        head.completeExceptionally(t);
        parts.add(t); // after END, never taken
      }
    }
  }

  /**
   * Starts a reader session: the upgrade request to {@code pathAndQuery}, then HTTP/2 on the same
   * connection.
   *
   * @throws Rejected when the server answered something else than 101 (its status and text)
   */
  ReaderSession openReader(String pathAndQuery) throws IOException {
    CompletableFuture<Object> answer = new CompletableFuture<>();
    Channel ch =
        connect(
            p -> {
              HttpClientCodec http = new HttpClientCodec();
              p.addLast(http);
              p.addLast(new HttpClientUpgradeHandler(http, new ReaderUpgrade(), MAX_API_BODY));
              // a refusal passes the upgrade handler in parts: aggregate it here
              p.addLast("aggregate", new HttpObjectAggregator(MAX_API_BODY));
              p.addLast(new Answer(answer));
            });
    Object o;
    try {
      ch.writeAndFlush(request(pathAndQuery))
          .addListener(ChannelFutureListener.FIRE_EXCEPTION_ON_FAILURE);
      o = await(answer);
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
    if (o instanceof ReaderSession s) {
      return s;
    }
    ch.close();
    throw new Rejected((ReaderSession.Reply) o);
  }

  private FullHttpRequest request(String pathAndQuery) {
    FullHttpRequest r =
        new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, pathAndQuery);
    r.headers().set(HttpHeaderNames.HOST, peer);
    r.headers().set(HttpHeaderNames.AUTHORIZATION, authorization);
    r.headers().set(HttpHeaderNames.USER_AGENT, "thaw");
    r.headers().set(HttpHeaderNames.ACCEPT, "application/json");
    return r;
  }

  /** The reader protocol's upgrade: on 101, HTTP/2 with prior knowledge takes the connection. */
  private final class ReaderUpgrade implements HttpClientUpgradeHandler.UpgradeCodec {
    @Override
    public CharSequence protocol() {
      return READER_PROTOCOL;
    }

    @Override
    public Collection<CharSequence> setUpgradeHeaders(
        ChannelHandlerContext ctx, HttpRequest upgradeRequest) {
      return List.of(); // "Connection: upgrade" and "Upgrade: <protocol>" only
    }

    @Override
    public void upgradeTo(ChannelHandlerContext ctx, FullHttpResponse upgradeResponse) {
      ctx.pipeline().remove("timeout"); // the session times its own requests
      ctx.pipeline()
          .addAfter(
              ctx.name(),
              "reader",
              ReaderSession.create(peer, peer, readTimeout.toNanos(), callTimeout.toNanos()));
    }
  }

  /** Completes with the session (upgrade) or the HTTP/1.1 response read to its end. */
  private final class Answer extends SimpleChannelInboundHandler<FullHttpResponse> {
    private final CompletableFuture<Object> answer;

    Answer(CompletableFuture<Object> answer) {
      this.answer = answer;
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, FullHttpResponse r) {
      String ct = r.headers().get(HttpHeaderNames.CONTENT_TYPE);
      answer.complete(
          new ReaderSession.Reply(r.status().code(), ct, ByteBufUtil.getBytes(r.content()), null));
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
      if (evt == HttpClientUpgradeHandler.UpgradeEvent.UPGRADE_SUCCESSFUL) {
        answer.complete(ctx.pipeline().get(ReaderSession.class));
        ctx.pipeline().remove("aggregate");
        ctx.pipeline().remove(this);
      }
      super.userEventTriggered(ctx, evt);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
      answer.completeExceptionally(
          new StoreException(peer + " closed the connection before it answered", true));
      super.channelInactive(ctx);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      answer.completeExceptionally(cause);
      ctx.close();
    }
  }

  /**
   * Connects and waits for the TLS handshake. The pipeline is a read timeout ("timeout"), TLS, then
   * what {@code protocol} adds.
   */
  private Channel connect(Consumer<ChannelPipeline> protocol) throws IOException {
    // taken when the pipeline is built: a handshake that fails at once closes the channel, and a
    // closed channel's pipeline no longer has its handlers
    AtomicReference<io.netty.util.concurrent.Future<Channel>> handshake = new AtomicReference<>();
    ChannelInitializer<SocketChannel> init =
        new ChannelInitializer<>() {
          @Override
          protected void initChannel(SocketChannel c) {
            ChannelPipeline p = c.pipeline();
            p.addLast(
                "timeout", new ReadTimeoutHandler(readTimeout.toMillis(), TimeUnit.MILLISECONDS));
            SslHandler tls = ssl.newHandler(c.alloc(), repo.socketHost(), repo.port());
            handshake.set(tls.handshakeFuture());
            p.addLast(tls);
            protocol.accept(p);
          }
        };
    Bootstrap b =
        new Bootstrap()
            .group(group)
            .channel(NioSocketChannel.class)
            .option(
                ChannelOption.CONNECT_TIMEOUT_MILLIS,
                (int) Math.min(Integer.MAX_VALUE, connectTimeout.toMillis()))
            .option(ChannelOption.TCP_NODELAY, true)
            .option(ChannelOption.SO_KEEPALIVE, true)
            .option(
                ChannelOption.RECVBUF_ALLOCATOR,
                new AdaptiveRecvByteBufAllocator(512, 64 << 10, MAX_READ))
            .handler(init);
    ChannelFuture cf = b.connect(repo.socketHost(), repo.port());
    try {
      if (!cf.await(connectTimeout.toMillis() + 1000)) {
        cf.channel().close();
        throw new StoreException("timed out connecting to " + peer, true);
      }
    } catch (InterruptedException e) {
      cf.channel().close();
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted connecting to " + peer);
    }
    if (!cf.isSuccess()) {
      Throwable c = cf.cause();
      if (c instanceof UnknownHostException) {
        throw new StoreException("unknown host " + repo.host(), true, c);
      }
      if (c instanceof ConnectException) {
        throw new StoreException(
            "cannot connect to " + peer + " (connection refused or unreachable)", true, c);
      }
      throw new StoreException("cannot connect to " + peer + ": " + c.getMessage(), true, c);
    }
    Channel ch = cf.channel();
    io.netty.util.concurrent.Future<Channel> hs = handshake.get();
    try {
      if (!hs.await(readTimeout.toMillis() + 1000)) {
        ch.close();
        throw new StoreException("TLS handshake with " + peer + " timed out", true);
      }
    } catch (InterruptedException e) {
      ch.close();
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted in the TLS handshake with " + peer);
    }
    if (!hs.isSuccess()) {
      ch.close();
      throw failure(hs.cause());
    }
    return ch;
  }

  private Object await(CompletableFuture<Object> answer) throws IOException {
    try {
      return answer.get(callTimeout.toMillis() + 1000, TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      throw new StoreException(
          "no answer from " + peer + " in " + callTimeout.toSeconds() + " s", true, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted waiting for " + peer);
    } catch (ExecutionException e) {
      throw failure(e.getCause());
    }
  }

  /** A transport fault as a store failure: TLS refusals are final, the rest may pass. */
  private StoreException failure(Throwable t) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof PbsTrust.Untrusted u) {
        return new StoreException("TLS: " + u.getMessage() + " (" + peer + ")", false, t);
      }
      if (c instanceof StoreException s) {
        return s;
      }
    }
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof SSLException) {
        return new StoreException("TLS failure with " + peer + ": " + c.getMessage(), false, t);
      }
      if (c instanceof ReadTimeoutException) {
        return new StoreException("timed out waiting for " + peer, true, t);
      }
      if (c instanceof ClosedChannelException) {
        return new StoreException(peer + " closed the connection", true, t);
      }
    }
    return new StoreException("connection to " + peer + " failed: " + t, true, t);
  }

  @Override
  public void close() {
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
  }
}
