package dev.thaw.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.thaw.format.BlobCodec;
import dev.thaw.format.Manifest;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPromise;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.netty.handler.codec.http2.AbstractHttp2ConnectionHandlerBuilder;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.Http2CodecUtil;
import io.netty.handler.codec.http2.Http2ConnectionDecoder;
import io.netty.handler.codec.http2.Http2ConnectionEncoder;
import io.netty.handler.codec.http2.Http2ConnectionHandler;
import io.netty.handler.codec.http2.Http2FrameAdapter;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Pattern;
import okhttp3.tls.HeldCertificate;

/**
 * A stand-in for a Proxmox Backup Server's API and reader protocol, built from the PBS 4.2 sources
 * ({@code src/api2/reader/mod.rs}, {@code environment.rs}, {@code src/api2/admin/datastore.rs},
 * proxmox-rs {@code proxmox-auth-api/src/api/mod.rs}, {@code proxmox-rest-server/src/rest.rs},
 * {@code h2service.rs}, {@code formatter.rs}), serving datastore directories as PBS lays them out.
 *
 * <ul>
 *   <li>TLS only (a self-signed certificate, as PBS installs one), no ALPN; HTTP/1.1 API.
 *   <li>Auth: a PBS auth cookie, if sent, is used instead of the header (this double knows no
 *       tickets, so it fails); else {@code Authorization: PBSAPIToken} followed by a space or '=',
 *       the token id up to the first ':', the secret percent-decoded. Every auth failure is a 401
 *       "authentication failed" without content type, sent {@code authDelay} after the request came
 *       (PBS: 3 s).
 *   <li>{@code GET /api2/json/admin/datastore/STORE/snapshots[?ns=&backup-type=&backup-id=]}:
 *       Datastore.Audit needed (403 otherwise), {@code {"data":[...]}} in no particular order
 *       (reversed here), groups without an {@code owner} file left out, {@code files} as objects.
 *   <li>{@code GET /api2/json/reader?...} with {@code Upgrade: proxmox-backup-reader-protocol-v1}:
 *       Datastore.Read needed (400 "no permissions on /datastore/STORE[/NS]" otherwise), 400 for an
 *       unknown datastore or snapshot, then 101 and HTTP/2 on the same connection with PBS's
 *       settings: 200 concurrent streams, 32 MiB stream and connection windows, 4 MiB frames.
 *   <li>Inside: {@code /download?file-name=} (an index registers its chunks for the session) and
 *       {@code /chunk?digest=} (401 "download chunk X not allowed", after the delay, for a chunk no
 *       index of this session holds; 400 when the chunk file is missing).
 *   <li>Handler errors: plain text with a JSON content type; parameter errors and unknown paths on
 *       the session: plain text without one.
 * </ul>
 *
 * Thread-safe. {@link #main} runs it as a process for end-to-end tests and benchmarks.
 */
// A test server on Netty: a failed write or close of its channels ends the test client's request,
// which the
// test sees.
@SuppressWarnings("FutureReturnValueIgnored")
public final class PbsReaderDouble implements AutoCloseable {
  public static final String PROTOCOL = "proxmox-backup-reader-protocol-v1";
  private static final String JSON_TYPE = "application/json;charset=UTF-8";
  private static final Pattern SAFE_ID = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9._\\-]*");
  private static final Pattern NS = Pattern.compile("(?:" + SAFE_ID + "/){0,7}" + SAFE_ID);
  private static final Pattern AUTH_ID =
      Pattern.compile("[^\\s:/\\p{Cntrl}]+@" + SAFE_ID + "(?:!" + SAFE_ID + ")?");
  private static final Pattern HEX_DIGEST = Pattern.compile("[a-f0-9]{64}");
  private static final Pattern TIME_DIR =
      Pattern.compile("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z");
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * An API token: its secret and privileges on every datastore ("Datastore.Read",
   * "Datastore.Audit").
   */
  public record Token(String secret, Set<String> privileges) {}

  private final Map<String, Path> datastores;
  private final Map<String, Token> tokens;
  private final Duration authDelay;
  private final HeldCertificate certificate;
  private final EventLoopGroup group;
  private final ExecutorService disk;
  private final Channel server;
  private final ChannelGroup readers = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);
  private final AtomicInteger sessions = new AtomicInteger();
  private final AtomicInteger chunks = new AtomicInteger();
  private final AtomicInteger refusedChunks = new AtomicInteger();
  private final AtomicInteger activeStreams = new AtomicInteger();
  private final AtomicInteger maxActiveStreams = new AtomicInteger();
  private final AtomicInteger authFailures = new AtomicInteger();
  private final List<String> requestLines = Collections.synchronizedList(new ArrayList<>());

  /** A drop to come: when the chunk count reaches {@code atChunk}, a reset or a close. */
  private record Drop(int atChunk, boolean reset) {}

  private volatile Drop drop;
  private volatile long replyDelayNanos;
  private volatile int firstStreamId;
  private volatile int streamLimit = 200;
  private volatile int listingPadding;
  private final java.util.concurrent.atomic.AtomicLong listingBytesSent =
      new java.util.concurrent.atomic.AtomicLong();

  /**
   * Starts a server on 127.0.0.1.
   *
   * @param port 0 for any free port
   * @param datastores datastore name to its directory
   * @param authDelay how long a 401 waits (PBS: 3 s)
   */
  public PbsReaderDouble(
      int port, Map<String, Path> datastores, Map<String, Token> tokens, Duration authDelay)
      throws Exception {
    this(
        port,
        datastores,
        tokens,
        authDelay,
        new HeldCertificate.Builder()
            .commonName("pbs-double")
            .addSubjectAlternativeName("127.0.0.1")
            .addSubjectAlternativeName("localhost")
            .build());
  }

  /** As the other constructor, serving {@code certificate} (its key and certificate). */
  public PbsReaderDouble(
      int port,
      Map<String, Path> datastores,
      Map<String, Token> tokens,
      Duration authDelay,
      HeldCertificate certificate)
      throws Exception {
    this.datastores = Map.copyOf(datastores);
    this.tokens = Map.copyOf(tokens);
    this.authDelay = authDelay;
    this.certificate = certificate;
    // OpenSSL where netty-tcnative is there, as PBS uses OpenSSL: the double's TLS then costs the
    // machine (which it shares with thaw in tests and benchmarks) what a PBS's would
    SslContext ssl =
        SslContextBuilder.forServer(certificate.keyPair().getPrivate(), certificate.certificate())
            .sslProvider(OpenSsl.isAvailable() ? SslProvider.OPENSSL : SslProvider.JDK)
            .build();
    this.group =
        new MultiThreadIoEventLoopGroup(
            2, new DefaultThreadFactory("pbs-double", true), NioIoHandler.newFactory());
    this.disk = Executors.newFixedThreadPool(4, new DefaultThreadFactory("pbs-double-disk", true));
    this.server =
        new ServerBootstrap()
            .group(group)
            .channel(NioServerSocketChannel.class)
            // let a whole chunk queue up for the socket: Netty's default of 64 KiB pauses the
            // HTTP/2
            // flow controller after every 64 KiB (hyper, in PBS, has no such limit)
            .childOption(
                ChannelOption.WRITE_BUFFER_WATER_MARK, new WriteBufferWaterMark(8 << 20, 16 << 20))
            .childHandler(
                new ChannelInitializer<SocketChannel>() {
                  @Override
                  protected void initChannel(SocketChannel ch) {
                    ch.pipeline().addLast(ssl.newHandler(ch.alloc()));
                    ch.pipeline().addLast("http", new HttpServerCodec());
                    ch.pipeline().addLast("aggregate", new HttpObjectAggregator(1 << 20));
                    ch.pipeline().addLast("api", new Api());
                  }
                })
            .bind("127.0.0.1", port)
            .sync()
            .channel();
  }

  public int port() {
    return ((InetSocketAddress) server.localAddress()).getPort();
  }

  /** The server certificate's SHA-256 fingerprint as PBS shows it. */
  public String fingerprint() throws Exception {
    byte[] d = MessageDigest.getInstance("SHA-256").digest(certificate.certificate().getEncoded());
    return HexFormat.ofDelimiter(":").formatHex(d);
  }

  public HeldCertificate certificate() {
    return certificate;
  }

  /** Reader sessions opened so far. */
  public int sessions() {
    return sessions.get();
  }

  /** Chunks served so far. */
  public int chunks() {
    return chunks.get();
  }

  /** Chunk requests refused because no index of the session held the chunk. */
  public int refusedChunks() {
    return refusedChunks.get();
  }

  /** The most streams that were open on one session at once. */
  public int maxActiveStreams() {
    return maxActiveStreams.get();
  }

  public int authFailures() {
    return authFailures.get();
  }

  /** Request lines seen ("GET /path?query" on HTTP/1.1, "H2 GET /path?query" in sessions). */
  public List<String> requests() {
    synchronized (requestLines) {
      return List.copyOf(requestLines);
    }
  }

  /**
   * After {@code n} more chunks, every reader connection is closed (once), as a server shutting
   * down closes it: GOAWAY, then the close once the open streams are answered.
   */
  public void dropConnectionsAfterChunks(int n) {
    drop = new Drop(chunks.get() + n, false);
  }

  /**
   * After {@code n} more chunks, every reader connection is cut (once), as a server that dies cuts
   * it: a TCP reset, no GOAWAY, no TLS close.
   */
  public void resetConnectionsAfterChunks(int n) {
    drop = new Drop(chunks.get() + n, true);
  }

  /** The id of the first stream of the last reader session. */
  public int firstStreamId() {
    return firstStreamId;
  }

  /**
   * The most concurrent streams a reader session opened from now on allows (hyper's default, which
   * PBS keeps: 200). A lower limit makes a client queue its requests sooner.
   */
  public void streamLimit(int n) {
    streamLimit = n;
  }

  /**
   * Lists {@code n} more complete snapshots (of groups vm/pad0 to vm/pad999, with the fields a PBS
   * 4 listing item has) after the datastore's own, which exist in the listing only: a listing of a
   * large datastore.
   */
  public void padListing(int n) {
    listingPadding = n;
  }

  /** Bytes of listing bodies handed to the socket so far (a client that stops reading stops it). */
  public long listingBytesSent() {
    return listingBytesSent.get();
  }

  /** Holds every reader response this long before sending it (0: none). */
  public void delayReplies(Duration d) {
    replyDelayNanos = d.toNanos();
  }

  /** Cuts every reader connection now: a TCP reset, no GOAWAY, no TLS close. */
  public void resetConnections() {
    for (Channel ch : readers) {
      ch.config().setOption(ChannelOption.SO_LINGER, 0);
      // closed below every handler, so no GOAWAY and no close_notify; with linger 0, a reset
      ch.pipeline().firstContext().close();
    }
  }

  /** Closes every reader connection now. */
  public void dropConnections() {
    readers.close().awaitUninterruptibly();
  }

  @Override
  public void close() {
    server.close().awaitUninterruptibly();
    readers.close().awaitUninterruptibly();
    disk.shutdownNow();
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly();
  }

  // ---- HTTP/1.1: the API and the upgrade ----

  private final class Api extends SimpleChannelInboundHandler<FullHttpRequest> {
    @Override
    protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) {
      long start = System.nanoTime();
      requestLines.add(req.method() + " " + req.uri());
      QueryStringDecoder q = new QueryStringDecoder(req.uri());
      String path = q.path();
      boolean reader = path.equals("/api2/json/reader");
      boolean listing = path.matches("/api2/json/admin/datastore/[^/]+/snapshots");
      if (!reader && !listing) {
        send(ctx, 404, "Path '" + path + "' not found.", JSON_TYPE);
        return;
      }
      String authId = authenticate(req);
      if (authId == null) {
        authFailures.incrementAndGet();
        long wait = authDelay.toNanos() - (System.nanoTime() - start);
        ctx.executor()
            .schedule(
                () -> send(ctx, 401, "authentication failed", null),
                Math.max(0, wait),
                TimeUnit.NANOSECONDS);
        return;
      }
      Set<String> privs = tokens.get(authId).privileges();
      Map<String, List<String>> p = q.parameters();
      if (listing) {
        list(ctx, path.split("/")[5], p, privs);
      } else {
        upgrade(ctx, req, p, privs);
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.close();
    }
  }

  /** The token id, or null when authentication fails (as proxmox-auth-api's http_check_auth). */
  private String authenticate(FullHttpRequest req) {
    for (String cookie : req.headers().getAll(HttpHeaderNames.COOKIE)) {
      for (String pair : cookie.split(";")) {
        String name = pair.contains("=") ? pair.substring(0, pair.indexOf('=')).strip() : "";
        if (name.equals("__Host-PBSAuthCookie") || name.equals("PBSAuthCookie")) {
          return null; // a ticket takes precedence over the token header; this double issues none
        }
      }
    }
    String h = req.headers().get(HttpHeaderNames.AUTHORIZATION);
    String prefix = "PBSAPIToken";
    if (h == null
        || !h.startsWith(prefix)
        || h.length() == prefix.length()
        || (h.charAt(prefix.length()) != ' ' && h.charAt(prefix.length()) != '=')) {
      return null;
    }
    String token = h.substring(prefix.length() + 1);
    int colon = token.indexOf(':');
    String id = colon < 0 ? token : token.substring(0, colon);
    if (!AUTH_ID.matcher(id).matches() || !tokens.containsKey(id) || colon < 0) {
      return null;
    }
    String secret;
    try {
      secret = percentDecode(token.substring(colon + 1));
    } catch (IllegalArgumentException e) {
      return null;
    }
    return tokens.get(id).secret().equals(secret) ? id : null;
  }

  /** Percent-decoding as the percent-encoding crate does it ('+' stays '+'); UTF-8 required. */
  static String percentDecode(String s) {
    byte[] in = s.getBytes(StandardCharsets.UTF_8);
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    for (int i = 0; i < in.length; i++) {
      if (in[i] == '%' && i + 2 < in.length && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
        out.write(hex(in[i + 1]) * 16 + hex(in[i + 2]));
        i += 2;
      } else {
        out.write(in[i]);
      }
    }
    java.nio.charset.CharsetDecoder d = StandardCharsets.UTF_8.newDecoder();
    try {
      return d.decode(java.nio.ByteBuffer.wrap(out.toByteArray())).toString();
    } catch (java.nio.charset.CharacterCodingException e) {
      throw new IllegalArgumentException("not UTF-8");
    }
  }

  private static int hex(byte b) {
    return Character.digit((char) b, 16);
  }

  private static String param(Map<String, List<String>> p, String name) {
    List<String> v = p.get(name);
    return v == null || v.isEmpty() ? null : v.get(0);
  }

  private static String aclPath(String store, String ns) {
    return "/datastore/" + store + (ns == null || ns.isEmpty() ? "" : "/" + ns);
  }

  private static Path nsDir(Path root, String ns) {
    Path d = root;
    if (ns != null && !ns.isEmpty()) {
      for (String part : ns.split("/")) {
        d = d.resolve("ns").resolve(part);
      }
    }
    return d;
  }

  private void list(
      ChannelHandlerContext ctx, String store, Map<String, List<String>> p, Set<String> privs) {
    String ns = param(p, "ns");
    if (!SAFE_ID.matcher(store).matches()
        || (ns != null && !ns.isEmpty() && !NS.matcher(ns).matches())) {
      send(ctx, 400, "parameter verification failed", null);
      return;
    }
    if (!privs.contains("Datastore.Audit")) {
      send(
          ctx,
          403,
          "permission check failed - missing Datastore.Audit|Datastore.Backup on "
              + aclPath(store, ns),
          JSON_TYPE);
      return;
    }
    Path root = datastores.get(store);
    if (root == null) {
      send(ctx, 400, "no such datastore '" + store + "'", JSON_TYPE);
      return;
    }
    String onlyType = param(p, "backup-type");
    String onlyId = param(p, "backup-id");
    ArrayNode data = JSON.createArrayNode();
    try {
      for (String type : List.of("vm", "ct", "host")) {
        if (onlyType != null && !onlyType.equals(type)) {
          continue;
        }
        for (Path group : dirs(nsDir(root, ns).resolve(type))) {
          String id = group.getFileName().toString();
          if ((onlyId != null && !onlyId.equals(id))
              || !Files.isRegularFile(group.resolve("owner"))) {
            continue; // PBS leaves out groups without an owner
          }
          String owner = Files.readString(group.resolve("owner")).strip();
          for (Path snap : dirs(group)) {
            String t = snap.getFileName().toString();
            if (!TIME_DIR.matcher(t).matches()) {
              continue;
            }
            ObjectNode o = data.addObject();
            o.put("backup-type", type)
                .put("backup-id", id)
                .put("backup-time", Instant.parse(t).getEpochSecond());
            ArrayNode files = o.putArray("files");
            Path manifest = snap.resolve(Manifest.FILE_NAME);
            if (Files.isRegularFile(manifest)) {
              byte[] blob = Files.readAllBytes(manifest);
              Manifest m = Manifest.parse(new BlobCodec(null).decode(blob, -1, 64 << 20), null);
              long size = 0;
              for (Manifest.FileInfo f : m.files()) {
                files
                    .addObject()
                    .put("filename", f.filename())
                    .put("crypt-mode", f.cryptMode().json())
                    .put("size", f.size());
                size += f.size();
              }
              files
                  .addObject()
                  .put("filename", Manifest.FILE_NAME)
                  .put("crypt-mode", m.keyFingerprint().isPresent() ? "sign-only" : "none")
                  .put("size", blob.length);
              o.put("size", size + blob.length);
            } else {
              for (Path f : files(snap)) {
                files.addObject().put("filename", f.getFileName().toString());
              }
            }
            o.put("owner", owner).put("protected", false);
          }
        }
      }
    } catch (IOException e) {
      send(ctx, 400, e.toString(), JSON_TYPE);
      return;
    }
    ArrayNode reversed = JSON.createArrayNode();
    for (int i = data.size() - 1; i >= 0; i--) {
      reversed.add(data.get(i));
    }
    // as PBS's streaming formatter sends it: chunked, no length, the items one after another
    ctx.write(
        new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK, chunkedJsonHeaders()));
    StringBuilder piece = new StringBuilder("{\"data\":[");
    boolean first = true;
    for (JsonNode item : reversed) {
      first = appendItem(ctx, piece, item.toString(), first);
    }
    int pad = listingPadding;
    for (int i = 0; i < pad; i++) {
      String item =
          "{\"backup-type\":\"vm\",\"backup-id\":\"pad"
              + (i % 1000)
              + "\",\"backup-time\":"
              + (1_600_000_000L + i)
              + ",\"files\":[{\"filename\":\"drive-scsi0.img.fidx\",\"crypt-mode\":\"none\","
              + "\"size\":34359738368},{\"filename\":\"qemu-server.conf.blob\",\"crypt-mode\":"
              + "\"none\",\"size\":612},{\"filename\":\"index.json.blob\",\"crypt-mode\":"
              + "\"none\",\"size\":562}],\"size\":34359739542,\"owner\":\"root@pam\","
              + "\"protected\":false,\"comment\":\"padding\",\"verification\":{\"state\":\"ok\","
              + "\"upid\":\"UPID:pbs:00000A2B:0001F3C4:00000002:65F0A1B2:verificationjob:"
              + "store1-v-0f1e2d3c-1a2b:root@pam:\"}}";
      first = appendItem(ctx, piece, item, first);
    }
    piece.append("]}");
    writePiece(ctx, piece);
    ctx.writeAndFlush(LastHttpContent.EMPTY_LAST_CONTENT);
  }

  private static io.netty.handler.codec.http.HttpHeaders chunkedJsonHeaders() {
    return new io.netty.handler.codec.http.DefaultHttpHeaders()
        .set(HttpHeaderNames.CONTENT_TYPE, JSON_TYPE)
        .set(
            HttpHeaderNames.TRANSFER_ENCODING,
            io.netty.handler.codec.http.HttpHeaderValues.CHUNKED);
  }

  /** Adds one listing item to {@code piece}, sent as a chunk once it holds 64 KiB. */
  private boolean appendItem(
      ChannelHandlerContext ctx, StringBuilder piece, String item, boolean first) {
    if (!first) {
      piece.append(',');
    }
    piece.append(item);
    if (piece.length() >= 64 << 10) {
      writePiece(ctx, piece);
      piece.setLength(0);
    }
    return false;
  }

  /** Writes {@code piece} as one chunk of the body, counted once the socket has taken it. */
  private void writePiece(ChannelHandlerContext ctx, CharSequence piece) {
    io.netty.buffer.ByteBuf b = Unpooled.copiedBuffer(piece, StandardCharsets.UTF_8);
    int n = b.readableBytes();
    ctx.write(new DefaultHttpContent(b))
        .addListener(
            f -> {
              if (f.isSuccess()) {
                listingBytesSent.addAndGet(n);
              }
            });
  }

  private static List<Path> dirs(Path dir) throws IOException {
    return entries(dir, true);
  }

  private static List<Path> files(Path dir) throws IOException {
    return entries(dir, false);
  }

  private static List<Path> entries(Path dir, boolean directories) throws IOException {
    List<Path> out = new ArrayList<>();
    if (!Files.isDirectory(dir)) {
      return out;
    }
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
      for (Path e : ds) {
        if (Files.isDirectory(e) == directories) {
          out.add(e);
        }
      }
    }
    Collections.sort(out);
    return out;
  }

  private void upgrade(
      ChannelHandlerContext ctx,
      FullHttpRequest req,
      Map<String, List<String>> p,
      Set<String> privs) {
    String store = param(p, "store");
    String ns = param(p, "ns");
    String type = param(p, "backup-type");
    String id = param(p, "backup-id");
    String time = param(p, "backup-time");
    long epoch;
    try {
      epoch = Long.parseLong(time);
    } catch (NumberFormatException e) {
      epoch = -1;
    }
    String debug = param(p, "debug");
    if (store == null
        || !SAFE_ID.matcher(store).matches()
        || store.length() < 3
        || store.length() > 32
        || (ns != null && !ns.isEmpty() && !NS.matcher(ns).matches())
        || type == null
        || !List.of("vm", "ct", "host").contains(type)
        || id == null
        || !SAFE_ID.matcher(id).matches()
        || epoch < 1
        || (debug != null
            && !debug.equals("true")
            && !debug.equals("false")
            && !debug.equals("1")
            && !debug.equals("0"))) {
      send(ctx, 400, "parameter verification failed", null);
      return;
    }
    if (!privs.contains("Datastore.Read")) {
      send(ctx, 400, "no permissions on " + aclPath(store, ns), JSON_TYPE);
      return;
    }
    Path root = datastores.get(store);
    if (root == null) {
      send(ctx, 400, "no such datastore '" + store + "'", JSON_TYPE);
      return;
    }
    String upgrade = req.headers().get(HttpHeaderNames.UPGRADE);
    if (upgrade == null) {
      send(ctx, 400, "missing Upgrade header", JSON_TYPE);
      return;
    }
    if (!upgrade.equals(PROTOCOL)) {
      send(ctx, 400, "invalid protocol name", JSON_TYPE);
      return;
    }
    String timeString =
        java.time.format.DateTimeFormatter.ISO_INSTANT.format(Instant.ofEpochSecond(epoch));
    Path snapshot = nsDir(root, ns).resolve(type).resolve(id).resolve(timeString);
    if (!Files.isDirectory(snapshot)) {
      send(
          ctx,
          400,
          "snapshot " + type + "/" + id + "/" + timeString + " does not exist.",
          JSON_TYPE);
      return;
    }
    FullHttpResponse r =
        new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.SWITCHING_PROTOCOLS);
    r.headers().set(HttpHeaderNames.CONNECTION, "upgrade").set(HttpHeaderNames.UPGRADE, PROTOCOL);
    ctx.writeAndFlush(r);
    // the 101 is encoded now; from here on the connection speaks HTTP/2 (the client's preface next)
    ctx.pipeline().remove("aggregate");
    ctx.pipeline().remove("http");
    ctx.pipeline()
        .replace("api", "reader", new SessionBuilder(new Session(root, snapshot)).build());
    sessions.incrementAndGet();
    readers.add(ctx.channel());
  }

  private static void send(ChannelHandlerContext ctx, int code, String text, String contentType) {
    FullHttpResponse r =
        new DefaultFullHttpResponse(
            HttpVersion.HTTP_1_1,
            HttpResponseStatus.valueOf(code),
            Unpooled.copiedBuffer(text, StandardCharsets.UTF_8));
    if (contentType != null) {
      r.headers().set(HttpHeaderNames.CONTENT_TYPE, contentType);
    }
    r.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, r.content().readableBytes());
    ctx.writeAndFlush(r);
  }

  // ---- HTTP/2: the reader session ----

  /** One reader session's state: the snapshot and the chunks its downloaded indexes registered. */
  private static final class Session {
    final Path root;
    final Path snapshot;
    final Set<String> allowed = ConcurrentHashMap.newKeySet();
    final AtomicInteger firstStream = new AtomicInteger();

    Session(Path root, Path snapshot) {
      this.root = root;
      this.snapshot = snapshot;
    }
  }

  private final class SessionBuilder
      extends AbstractHttp2ConnectionHandlerBuilder<Http2ConnectionHandler, SessionBuilder> {
    private final Session session;

    SessionBuilder(Session session) {
      this.session = session;
      server(true);
      // hyper's server as PBS configures it: 32 MiB windows, 4 MiB frames; 200 streams (hyper's
      // default)
      initialSettings(
          new Http2Settings()
              .maxConcurrentStreams(streamLimit)
              .initialWindowSize(32 << 20)
              .maxFrameSize(4 << 20));
    }

    @Override
    protected Http2ConnectionHandler build() {
      return super.build();
    }

    @Override
    protected Http2ConnectionHandler build(
        Http2ConnectionDecoder decoder, Http2ConnectionEncoder encoder, Http2Settings settings) {
      Http2ConnectionHandler h =
          new Http2ConnectionHandler(decoder, encoder, settings) {
            @Override
            public void handlerAdded(ChannelHandlerContext ctx) throws Exception {
              super.handlerAdded(ctx);
              connection()
                  .local()
                  .flowController()
                  .incrementWindowSize(
                      connection().connectionStream(),
                      (32 << 20) - Http2CodecUtil.DEFAULT_WINDOW_SIZE);
              ctx.flush();
            }
          };
      frameListener(new Streams(h, session));
      return h;
    }
  }

  private final class Streams extends Http2FrameAdapter {
    private final Http2ConnectionHandler h;
    private final Session session;

    Streams(Http2ConnectionHandler h, Session session) {
      this.h = h;
      this.session = session;
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
    public void onHeadersRead(
        ChannelHandlerContext ctx,
        int streamId,
        Http2Headers headers,
        int padding,
        boolean endOfStream) {
      if (session.firstStream.compareAndSet(0, streamId)) {
        firstStreamId = streamId;
      }
      int active = activeStreams.incrementAndGet();
      maxActiveStreams.accumulateAndGet(active, Math::max);
      String uri = String.valueOf(headers.path());
      requestLines.add("H2 " + headers.method() + " " + uri);
      QueryStringDecoder q = new QueryStringDecoder(uri);
      List<String> components = new ArrayList<>();
      for (String c : q.path().split("/")) {
        if (c.startsWith(".")) {
          reply(ctx, streamId, 400, "illegal path component", null, null, false);
          return;
        }
        if (!c.isEmpty()) {
          components.add(c);
        }
      }
      String route = components.size() == 1 ? components.get(0) : "";
      Map<String, List<String>> p = q.parameters();
      switch (route) {
        case "download" -> download(ctx, streamId, param(p, "file-name"));
        case "chunk" -> chunk(ctx, streamId, param(p, "digest"));
        default ->
            reply(
                ctx,
                streamId,
                404,
                "Path '/" + String.join("/", components) + "' not found.",
                JSON_TYPE,
                null,
                false);
      }
    }

    private void download(ChannelHandlerContext ctx, int streamId, String name) {
      if (name == null || !SAFE_ID.matcher(name).matches()) {
        reply(
            ctx,
            streamId,
            400,
            "parameter verification failed - 'file-name': value does not match",
            null,
            null,
            false);
        return;
      }
      int dot = name.lastIndexOf('.');
      String ext = dot < 0 ? "" : name.substring(dot + 1);
      if (!List.of("fidx", "didx", "blob").contains(ext)) {
        reply(ctx, streamId, 400, "unknown archive type: \"" + name + "\"", JSON_TYPE, null, false);
        return;
      }
      Path file = session.snapshot.resolve(name);
      disk.execute(
          () -> {
            byte[] data;
            try {
              data = Files.readAllBytes(file);
            } catch (NoSuchFileException e) {
              if (ext.equals("blob")) {
                reply(
                    ctx,
                    streamId,
                    404,
                    "open file \"" + file + "\" failed - not found",
                    JSON_TYPE,
                    null,
                    false);
              } else {
                reply(
                    ctx,
                    streamId,
                    400,
                    "Unable to open "
                        + (ext.equals("fidx") ? "fixed" : "dynamic")
                        + " index \""
                        + file
                        + "\" - No such file or directory (os error 2)",
                    JSON_TYPE,
                    null,
                    false);
              }
              return;
            } catch (IOException e) {
              reply(
                  ctx,
                  streamId,
                  400,
                  "open file \"" + file + "\" failed: " + e,
                  JSON_TYPE,
                  null,
                  false);
              return;
            }
            if (!ext.equals("blob")) {
              int entry = ext.equals("fidx") ? 32 : 40;
              int off = ext.equals("fidx") ? 0 : 8;
              if (data.length < 4096 || (data.length - 4096) % entry != 0) {
                reply(
                    ctx,
                    streamId,
                    400,
                    "Unable to open index \"" + file + "\" - wrong size",
                    JSON_TYPE,
                    null,
                    false);
                return;
              }
              HexFormat hf = HexFormat.of();
              for (int i = 4096; i < data.length; i += entry) {
                session.allowed.add(hf.formatHex(data, i + off, i + off + 32)); // register_chunk
              }
            }
            // a streamed file body: no content-length
            reply(ctx, streamId, 200, null, "application/octet-stream", data, false);
          });
    }

    private void chunk(ChannelHandlerContext ctx, int streamId, String digest) {
      if (digest == null || !HEX_DIGEST.matcher(digest).matches()) {
        reply(
            ctx,
            streamId,
            400,
            "parameter verification failed - 'digest': value does not match",
            null,
            null,
            false);
        return;
      }
      if (!session.allowed.contains(digest)) {
        refusedChunks.incrementAndGet();
        ctx.executor()
            .schedule(
                () ->
                    reply(
                        ctx,
                        streamId,
                        401,
                        "download chunk " + digest + " not allowed",
                        JSON_TYPE,
                        null,
                        false),
                authDelay.toNanos(),
                TimeUnit.NANOSECONDS);
        return;
      }
      Path file = session.root.resolve(".chunks").resolve(digest.substring(0, 4)).resolve(digest);
      disk.execute(
          () -> {
            byte[] data;
            try {
              data = Files.readAllBytes(file);
            } catch (IOException e) {
              reply(
                  ctx,
                  streamId,
                  400,
                  "reading file \"" + file + "\" failed: No such file or directory (os error 2)",
                  JSON_TYPE,
                  null,
                  false);
              return;
            }
            int n = chunks.incrementAndGet();
            reply(ctx, streamId, 200, null, "application/octet-stream", data, true);
            Drop d = drop;
            if (d != null && n == d.atChunk()) {
              drop = null;
              if (d.reset()) {
                resetConnections();
              } else {
                readers.close(); // not awaited: this is an event loop
              }
            }
          });
    }

    /** Sends a response on the event loop: a text body for errors, {@code data} otherwise. */
    private void reply(
        ChannelHandlerContext ctx,
        int streamId,
        int status,
        String text,
        String contentType,
        byte[] data,
        boolean contentLength) {
      long delay = replyDelayNanos;
      if (delay > 0) {
        ctx.executor()
            .schedule(
                () -> send(ctx, streamId, status, text, contentType, data, contentLength),
                delay,
                TimeUnit.NANOSECONDS);
      } else if (!ctx.executor().inEventLoop()) {
        ctx.executor()
            .execute(() -> send(ctx, streamId, status, text, contentType, data, contentLength));
      } else {
        send(ctx, streamId, status, text, contentType, data, contentLength);
      }
    }

    private void send(
        ChannelHandlerContext ctx,
        int streamId,
        int status,
        String text,
        String contentType,
        byte[] data,
        boolean contentLength) {
      activeStreams.decrementAndGet();
      byte[] body = data != null ? data : text.getBytes(StandardCharsets.UTF_8);
      Http2Headers hs = new DefaultHttp2Headers().status(Integer.toString(status));
      if (contentType != null) {
        hs.set("content-type", contentType);
      }
      if (contentLength) {
        hs.setInt("content-length", body.length);
      }
      if (!ctx.channel().isActive()) {
        return;
      }
      h.encoder().writeHeaders(ctx, streamId, hs, 0, false, ctx.newPromise());
      // h2 (under hyper) sends a buffered body in frames as large as the client allows (the PBS
      // client allows 4 MiB), so a chunk leaves whole before the next one; Netty's flow
      // controller would interleave every open stream in 1 KiB pieces. Bodies go out in turn.
      bodies.add(
          () -> {
            ChannelPromise sent = ctx.newPromise();
            sent.addListener(f -> nextBody());
            h.encoder().writeData(ctx, streamId, Unpooled.wrappedBuffer(body), 0, true, sent);
            h.flush(ctx); // the handler's flush: DATA leaves the flow controller there
          });
      if (!sending) {
        nextBody();
      }
    }

    private final java.util.ArrayDeque<Runnable> bodies =
        new java.util.ArrayDeque<>(); // event loop only
    private boolean sending;

    private void nextBody() {
      Runnable next = bodies.poll();
      sending = next != null;
      if (next != null) {
        next.run();
      }
    }
  }

  // ---- standalone ----

  /**
   * Runs the double until killed: {@code --port N --datastore NAME=DIR... --tokens FILE
   * [--auth-delay-ms N] [--cert-out PEM] [--drop-after-chunks N]}; the last cuts every reader
   * connection once N chunks have been served, as {@link #resetConnectionsAfterChunks} does. The
   * tokens file has one token per line: {@code AUTHID SECRET [PRIV,PRIV]} (privileges
   * Datastore.Read, Datastore.Audit; both when left out; "-" for none). Prints "fingerprint FP" and
   * then "listening on PORT".
   */
  public static void main(String[] args) throws Exception {
    int port = 0;
    long delay = 3000;
    Map<String, Path> ds = new java.util.LinkedHashMap<>();
    Map<String, Token> tokens = new java.util.LinkedHashMap<>();
    Path certOut = null;
    int resetAfter = -1;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--port" -> port = Integer.parseInt(args[++i]);
        case "--auth-delay-ms" -> delay = Long.parseLong(args[++i]);
        case "--cert-out" -> certOut = Path.of(args[++i]);
        case "--drop-after-chunks" -> resetAfter = Integer.parseInt(args[++i]);
        case "--datastore" -> {
          String[] kv = args[++i].split("=", 2);
          ds.put(kv[0], Path.of(kv[1]));
        }
        case "--tokens" -> {
          for (String line : Files.readAllLines(Path.of(args[++i]))) {
            String[] f = line.strip().split("\\s+");
            if (f.length < 2 || line.isBlank() || line.startsWith("#")) {
              continue;
            }
            Set<String> privs =
                f.length < 3
                    ? Set.of("Datastore.Read", "Datastore.Audit")
                    : f[2].equals("-") ? Set.of() : new HashSet<>(List.of(f[2].split(",")));
            tokens.put(f[0], new Token(percentDecode(f[1]), privs));
          }
        }
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    PbsReaderDouble d = new PbsReaderDouble(port, ds, tokens, Duration.ofMillis(delay));
    if (resetAfter >= 0) {
      d.resetConnectionsAfterChunks(resetAfter);
    }
    if (certOut != null) {
      Files.writeString(certOut, d.certificate().certificatePem());
    }
    System.out.println("fingerprint " + d.fingerprint());
    System.out.println("listening on " + d.port());
    System.out.flush();
    Thread.currentThread().join();
  }

  /** Decodes a URL query component, for tests that check what the client sent. */
  public static String queryValue(String uri, String name) {
    for (String kv : uri.substring(uri.indexOf('?') + 1).split("&")) {
      if (kv.startsWith(name + "=")) {
        return URLDecoder.decode(kv.substring(name.length() + 1), StandardCharsets.UTF_8);
      }
    }
    return null;
  }
}
