package dev.thaw.cli;

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
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.cert.CertificateEncodingException;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import okhttp3.tls.HeldCertificate;

/**
 * A Proxmox Backup Server reader endpoint for the start-up training alone: it lets the training run
 * thaw's commands over the reader protocol, so that the start-up archive holds what they load
 * (Netty's TLS, HTTP/1.1 and HTTP/2 code and the JDK's TLS classes Netty sets up: some 1,300
 * classes that a command over the reader otherwise loads from the jar or the JDK).
 *
 * <p>It listens on 127.0.0.1 with a certificate made for the run (pin it with {@link
 * #fingerprint()}) and serves the snapshots of one datastore directory to any token: the snapshot
 * listing, and after the reader upgrade, HTTP/2 streams for {@code /download} and {@code /chunk}.
 * It checks no token, no permission and no chunk registration: it is no stand-in for a PBS (the
 * tests have one built from PBS's sources), only the shape of its answers.
 */
// a failed write or close only ends the training's connection, which the client then reports
@SuppressWarnings("FutureReturnValueIgnored")
final class TrainingReader implements AutoCloseable {
  private static final String PROTOCOL = "proxmox-backup-reader-protocol-v1";

  private final Path root;
  private final HeldCertificate certificate;
  private final EventLoopGroup group;
  private final Channel server;

  /** Starts serving the datastore in {@code root}. */
  TrainingReader(Path root) throws IOException {
    this.root = root;
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

  int port() {
    return ((InetSocketAddress) server.localAddress()).getPort();
  }

  /** The SHA-256 fingerprint of the server's certificate, as PBS shows one. */
  String fingerprint() {
    try {
      byte[] d =
          MessageDigest.getInstance("SHA-256").digest(certificate.certificate().getEncoded());
      return HexFormat.ofDelimiter(":").formatHex(d);
    } catch (NoSuchAlgorithmException | CertificateEncodingException e) {
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
          && PROTOCOL.equals(req.headers().get(HttpHeaderNames.UPGRADE))) {
        Path snapshot = snapshot(uri);
        if (!Files.isDirectory(snapshot)) {
          reply(ctx, HttpResponseStatus.BAD_REQUEST, "snapshot does not exist");
          return;
        }
        FullHttpResponse r =
            new DefaultFullHttpResponse(
                HttpVersion.HTTP_1_1, HttpResponseStatus.SWITCHING_PROTOCOLS);
        r.headers()
            .set(HttpHeaderNames.CONNECTION, "upgrade")
            .set(HttpHeaderNames.UPGRADE, PROTOCOL);
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
    private final Path snapshot;

    Streams(Path snapshot) {
      this.snapshot = snapshot;
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, Http2StreamFrame frame) {
      if (!(frame instanceof Http2HeadersFrame h) || !h.isEndStream()) {
        return;
      }
      QueryStringDecoder uri = new QueryStringDecoder(String.valueOf(h.headers().path()));
      List<String> name = uri.parameters().getOrDefault("file-name", List.of());
      List<String> digest = uri.parameters().getOrDefault("digest", List.of());
      Path file = null;
      if (uri.path().equals("/download") && name.size() == 1 && safe(name.get(0))) {
        file = snapshot.resolve(name.get(0));
      } else if (uri.path().equals("/chunk") && digest.size() == 1 && hex(digest.get(0))) {
        String d = digest.get(0);
        file = root.resolve(".chunks").resolve(d.substring(0, 4)).resolve(d);
      }
      byte[] body;
      try {
        body = file != null ? Files.readAllBytes(file) : null;
      } catch (IOException e) {
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

  /** {@code backup-type/backup-id/backup-time} of a reader request, as a directory. */
  private Path snapshot(QueryStringDecoder uri) {
    String type = first(uri, "backup-type");
    String id = first(uri, "backup-id");
    String time = first(uri, "backup-time");
    if (!safe(type) || !safe(id) || time == null || !time.chars().allMatch(Character::isDigit)) {
      return root.resolve("missing");
    }
    return root.resolve(type)
        .resolve(id)
        .resolve(Instant.ofEpochSecond(Long.parseLong(time)).toString());
  }

  /** The listing's JSON: every TYPE/ID/TIME directory with its files. */
  private String listing() throws IOException {
    StringBuilder json = new StringBuilder("{\"data\":[");
    String sep = "";
    for (Path type : dirs(root)) {
      for (Path id : dirs(type)) {
        for (Path time : dirs(id)) {
          long epoch;
          try {
            epoch = Instant.parse(time.getFileName().toString()).getEpochSecond();
          } catch (java.time.DateTimeException e) {
            continue;
          }
          json.append(sep)
              .append("{\"backup-type\":\"")
              .append(type.getFileName())
              .append("\",\"backup-id\":\"")
              .append(id.getFileName())
              .append("\",\"backup-time\":")
              .append(epoch)
              .append(",\"files\":[");
          String fsep = "";
          try (Stream<Path> files = Files.list(time)) {
            for (Path f :
                files
                    .filter(f -> Files.isRegularFile(f) && safe(f.getFileName().toString()))
                    .toList()) {
              json.append(fsep)
                  .append("{\"filename\":\"")
                  .append(f.getFileName())
                  .append("\",\"crypt-mode\":\"none\",\"size\":")
                  .append(Files.size(f))
                  .append('}');
              fsep = ",";
            }
          }
          json.append("]}");
          sep = ",";
        }
      }
    }
    return json.append("]}").toString();
  }

  private static List<Path> dirs(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(p -> Files.isDirectory(p) && safe(p.getFileName().toString())).toList();
    }
  }

  private static String first(QueryStringDecoder uri, String name) {
    List<String> v = uri.parameters().get(name);
    return v == null || v.isEmpty() ? null : v.get(0);
  }

  /** A name that is one plain path element (no separators, no dot files). */
  private static boolean safe(String s) {
    return s != null
        && !s.isEmpty()
        && !s.startsWith(".")
        && s.chars().allMatch(c -> Character.isLetterOrDigit(c) || "-_.:".indexOf(c) >= 0);
  }

  private static boolean hex(String s) {
    return s.length() == 64 && s.chars().allMatch(c -> Character.digit(c, 16) >= 0);
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
