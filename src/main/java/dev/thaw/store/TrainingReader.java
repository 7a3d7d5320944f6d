package dev.thaw.store;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.thaw.format.BlobCodec;
import dev.thaw.format.Digest;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2StreamFrame;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.cert.CertificateException;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import okhttp3.tls.HeldCertificate;

/**
 * A Proxmox Backup Server reader endpoint for the start-up training alone: it lets the training run
 * thaw's commands over the reader protocol, so that the start-up archive holds what they load
 * (Netty's TLS, HTTP/1.1 and HTTP/2 code and the JDK's TLS classes Netty sets up: some 1,300
 * classes that a command over the reader otherwise loads from the jar or the JDK).
 *
 * <p>It listens on 127.0.0.1 with a certificate made for the run and serves the snapshots of one
 * store to any token: the snapshot listing, and after the reader upgrade, HTTP/2 streams for {@code
 * /download} and {@code /chunk}. It checks no token, no permission and no chunk registration: it is
 * no stand-in for a PBS (the tests have one built from PBS's sources), only the shape of its
 * answers. Commands reach it as {@link #repository()} with {@link #environment()}.
 */
// a failed write or close only ends the training's connection, which the client then reports
@SuppressWarnings("FutureReturnValueIgnored")
public final class TrainingReader implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final ChunkStore store;
  private final HeldCertificate certificate;
  private final EventLoopGroup group;
  private final Channel server;

  /** Starts serving the snapshots and chunks of {@code store}, which the caller closes. */
  public TrainingReader(ChunkStore store) throws IOException {
    this.store = store;
    this.certificate =
        new HeldCertificate.Builder()
            .commonName("thaw training")
            .addSubjectAlternativeName("127.0.0.1")
            .build();
    SslContext tls =
        SslContextBuilder.forServer(certificate.keyPair().getPrivate(), certificate.certificate())
            .build();
    this.group =
        new MultiThreadIoEventLoopGroup(
            1, new DefaultThreadFactory("thaw-training-reader", true), NioIoHandler.newFactory());
    try {
      this.server =
          new ServerBootstrap()
              .group(group)
              .channel(NioServerSocketChannel.class)
              .childHandler(
                  new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                      ch.pipeline().addLast(tls.newHandler(ch.alloc()));
                      ch.pipeline().addLast("http", new HttpServerCodec());
                      ch.pipeline().addLast("aggregate", new HttpObjectAggregator(1 << 16));
                      ch.pipeline().addLast("api", new Api());
                    }
                  })
              .bind(new InetSocketAddress(InetAddress.getByAddress(new byte[] {127, 0, 0, 1}), 0))
              .syncUninterruptibly()
              .channel();
    } catch (RuntimeException e) {
      group.shutdownGracefully(0, 0, TimeUnit.SECONDS);
      throw e;
    }
  }

  /** The repository to name, in the PBS client's syntax (datastore "training"). */
  public String repository() {
    int port = ((InetSocketAddress) server.localAddress()).getPort();
    return "thaw@pbs!training@127.0.0.1:" + port + ":training";
  }

  /** The environment a command reads its credentials from: a secret, and the server pinned. */
  public Map<String, String> environment() {
    try {
      return Map.of(
          "PBS_PASSWORD",
          "training",
          "PBS_FINGERPRINT",
          PbsTrust.fingerprint(certificate.certificate()));
    } catch (CertificateException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public void close() {
    server.close().syncUninterruptibly();
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
  }

  /** The HTTP/1.1 API: the snapshot listing and the reader upgrade. */
  private final class Api extends SimpleChannelInboundHandler<FullHttpRequest> {
    @Override
    protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) throws IOException {
      QueryStringDecoder uri = new QueryStringDecoder(req.uri());
      if (uri.path().endsWith("/snapshots")) {
        reply(ctx, HttpResponseStatus.OK, listing());
      } else if (uri.path().equals("/api2/json/reader")
          && PbsClient.READER_PROTOCOL.equals(req.headers().get(HttpHeaderNames.UPGRADE))) {
        SnapshotPath snapshot;
        try {
          snapshot =
              SnapshotPath.parse(
                  new SnapshotPath(
                          List.of(),
                          first(uri, "backup-type"),
                          first(uri, "backup-id"),
                          Instant.ofEpochSecond(Long.parseLong(first(uri, "backup-time"))))
                      .toString());
        } catch (RuntimeException e) {
          reply(ctx, HttpResponseStatus.BAD_REQUEST, "parameter verification failed");
          return;
        }
        FullHttpResponse r =
            new DefaultFullHttpResponse(
                HttpVersion.HTTP_1_1, HttpResponseStatus.SWITCHING_PROTOCOLS);
        r.headers()
            .set(HttpHeaderNames.CONNECTION, "upgrade")
            .set(HttpHeaderNames.UPGRADE, PbsClient.READER_PROTOCOL);
        ctx.writeAndFlush(r); // encoded now: the client's HTTP/2 preface comes next
        ctx.pipeline().remove("aggregate");
        ctx.pipeline().remove("http");
        ctx.pipeline().replace("api", "h2", Http2FrameCodecBuilder.forServer().build());
        ctx.pipeline().addLast(new Streams(snapshot));
      } else {
        reply(ctx, HttpResponseStatus.NOT_FOUND, "not found");
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.close();
    }
  }

  /** The reader session: each request's answer on its stream. */
  private final class Streams extends SimpleChannelInboundHandler<Http2StreamFrame> {
    private final SnapshotPath snapshot;

    Streams(SnapshotPath snapshot) {
      this.snapshot = snapshot;
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, Http2StreamFrame frame) {
      if (!(frame instanceof Http2HeadersFrame h) || !h.isEndStream()) {
        return;
      }
      QueryStringDecoder uri = new QueryStringDecoder(String.valueOf(h.headers().path()));
      byte[] body;
      try {
        body =
            switch (uri.path()) {
              case "/download" ->
                  store.readFile(snapshot, SnapshotPath.checkFileName(first(uri, "file-name")));
              case "/chunk" ->
                  store.readChunk(Digest.parse(first(uri, "digest")), BlobCodec.MAX_BLOB);
              default -> null;
            };
      } catch (IOException | RuntimeException e) {
        body = null;
      }
      String status = body != null ? "200" : "404";
      byte[] payload = body != null ? body : "not found".getBytes(StandardCharsets.UTF_8);
      DefaultHttp2Headers headers = new DefaultHttp2Headers();
      headers.status(status).setInt(HttpHeaderNames.CONTENT_LENGTH, payload.length);
      ctx.write(new DefaultHttp2HeadersFrame(headers).stream(h.stream()));
      ctx.writeAndFlush(
          new DefaultHttp2DataFrame(Unpooled.wrappedBuffer(payload), true).stream(h.stream()));
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.close();
    }
  }

  /** The listing's JSON: the store's snapshots, each with the manifest a client looks for. */
  private String listing() throws IOException {
    ObjectNode json = JSON.createObjectNode();
    ArrayNode data = json.putArray("data");
    for (SnapshotPath s : store.listSnapshots()) {
      ObjectNode e = data.addObject();
      e.put("backup-type", s.type()).put("backup-id", s.id());
      e.put("backup-time", s.time().getEpochSecond());
      e.putArray("files").addObject().put("filename", PbsStore.MANIFEST).put("crypt-mode", "none");
    }
    return JSON.writeValueAsString(json);
  }

  /** The one value of a query parameter (null when it has none or several). */
  private static String first(QueryStringDecoder uri, String name) {
    List<String> v = uri.parameters().get(name);
    return v == null || v.size() != 1 ? null : v.get(0);
  }

  private static void reply(ChannelHandlerContext ctx, HttpResponseStatus status, String body) {
    FullHttpResponse r =
        new DefaultFullHttpResponse(
            HttpVersion.HTTP_1_1, status, Unpooled.copiedBuffer(body, StandardCharsets.UTF_8));
    r.headers()
        .set(HttpHeaderNames.CONTENT_TYPE, "application/json")
        .setInt(HttpHeaderNames.CONTENT_LENGTH, r.content().readableBytes());
    ctx.writeAndFlush(r);
  }
}
