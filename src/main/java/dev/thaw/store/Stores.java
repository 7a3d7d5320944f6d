package dev.thaw.store;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import okhttp3.ConnectionPool;
import okhttp3.ConnectionSpec;
import okhttp3.Dispatcher;
import okhttp3.HttpUrl;
import okhttp3.OkHttpClient;
import okio.Throttler;

/**
 * Opens stores from the names users give: a path or {@code file:///path} (local datastore), {@code
 * http(s)://host/prefix} (static HTTP datastore, read-only), {@code s3://BUCKET/PREFIX} (a
 * datastore in an S3 bucket, Proxmox Backup Server 4 layout), {@code pbs://REPOSITORY} (a Proxmox
 * Backup Server's reader protocol, REPOSITORY as the PBS client writes it: {@code
 * [[AUTHID@]HOST[:PORT]:]DATASTORE}). The stores opened by one call share one OkHttp client and one
 * rate limit.
 */
public final class Stores {
  /** A call (connect, request, whole body) may take this many read timeouts at most. */
  static final int CALL_TIMEOUT_FACTOR = 10;

  private Stores() {}

  /**
   * Settings that shape a store's connections. Each request is one attempt with its own timeouts:
   * {@code connectTimeout} to connect, {@code readTimeout} for any wait for bytes, and {@value
   * #CALL_TIMEOUT_FACTOR} times {@code readTimeout} for the whole request and body.
   *
   * @param caFile PEM certificates to trust for HTTPS instead of the system's, or null
   * @param authorization an {@code Authorization} header value for HTTP stores, or null; never
   *     logged
   * @param s3 where S3 buckets are and how to address them
   * @param rateLimit bytes per second for all fetches together, 0 for no limit
   * @param env the environment S3 credentials come from; never shown
   * @param pbs namespace, fingerprint and token secret for {@code pbs://} stores
   */
  public record Options(
      int parallel,
      Duration connectTimeout,
      Duration readTimeout,
      Path caFile,
      String authorization,
      S3Options s3,
      long rateLimit,
      Map<String, String> env,
      PbsOptions pbs) {
    /** Defaults for {@code parallel} concurrent fetches. */
    public static Options defaults(int parallel) {
      return new Options(
          parallel,
          Duration.ofSeconds(10),
          Duration.ofSeconds(30),
          null,
          null,
          S3Options.DEFAULT,
          0,
          System.getenv(),
          PbsOptions.NONE);
    }

    public Options withTls(Path caFile, String authorization) {
      return new Options(
          parallel, connectTimeout, readTimeout, caFile, authorization, s3, rateLimit, env, pbs);
    }

    public Options withTimeouts(Duration connectTimeout, Duration readTimeout) {
      return new Options(
          parallel, connectTimeout, readTimeout, caFile, authorization, s3, rateLimit, env, pbs);
    }

    public Options withS3(S3Options s3) {
      return new Options(
          parallel, connectTimeout, readTimeout, caFile, authorization, s3, rateLimit, env, pbs);
    }

    public Options withRateLimit(long bytesPerSecond) {
      if (bytesPerSecond < 0) {
        throw new IllegalArgumentException("rate limit must not be negative");
      }
      return new Options(
          parallel,
          connectTimeout,
          readTimeout,
          caFile,
          authorization,
          s3,
          bytesPerSecond,
          env,
          pbs);
    }

    /** The environment S3 credentials and region are read from (default: the process's). */
    public Options withEnv(Map<String, String> env) {
      return new Options(
          parallel,
          connectTimeout,
          readTimeout,
          caFile,
          authorization,
          s3,
          rateLimit,
          Map.copyOf(env),
          pbs);
    }

    public Options withPbs(PbsOptions pbs) {
      return new Options(
          parallel, connectTimeout, readTimeout, caFile, authorization, s3, rateLimit, env, pbs);
    }

    @Override
    public String toString() {
      return "Options[parallel="
          + parallel
          + ", caFile="
          + caFile
          + (authorization != null ? ", auth=***" : "")
          + ", "
          + s3
          + ", rateLimit="
          + rateLimit
          + ", "
          + pbs
          + "]";
    }
  }

  /**
   * Where S3 buckets live.
   *
   * @param endpoint the S3 API's base URL, or null for AWS ({@code
   *     https://s3.REGION.amazonaws.com})
   * @param region the signing region, or null to take it from the environment or profile
   * @param pathStyle address buckets as {@code ENDPOINT/BUCKET/KEY} instead of {@code
   *     BUCKET.ENDPOINT/KEY}; always so for an endpoint given as an IP address
   */
  public record S3Options(String endpoint, String region, boolean pathStyle) {
    public static final S3Options DEFAULT = new S3Options(null, null, false);
  }

  /**
   * The stores and files one command reads: everything opened through one {@link Access} shares one
   * HTTP client (connections, dispatcher) and one rate limit.
   */
  public static Access access(Options options) {
    return new Access(options);
  }

  /** A file's bytes and where they came from (a path, or a URL without credentials). */
  public record Fetched(String location, byte[] bytes) {}

  /** What a store name names, told apart once for every way of opening one. */
  enum Scheme {
    LOCAL,
    FILE_URL,
    HTTP,
    S3,
    PBS,
    UNKNOWN;

    static Scheme of(String spec) {
      String lower = spec.toLowerCase(Locale.ROOT);
      if (lower.startsWith("http://") || lower.startsWith("https://")) {
        return HTTP;
      }
      if (lower.startsWith("s3://")) {
        return S3;
      }
      if (lower.startsWith("pbs://")) {
        return PBS;
      }
      if (lower.startsWith("file:")) {
        return FILE_URL;
      }
      return lower.matches("^[a-z][a-z0-9+.-]*://.*") ? UNKNOWN : LOCAL;
    }

    /** The local path a {@link #LOCAL} or {@link #FILE_URL} name gives. */
    static Path path(String spec) {
      return of(spec) == FILE_URL ? Path.of(URI.create(spec)) : Path.of(spec);
    }
  }

  /**
   * Opens the stores and files of one command with its settings: one HTTP client and one rate limit
   * for all of them, made when first needed. Thread-safe.
   */
  public static final class Access {
    private final Options options;
    private final Throttler throttler;
    private HttpExchange http;

    private Access(Options options) {
      this.options = options;
      if (options.rateLimit() > 0) {
        throttler = new Throttler();
        // bursts of at most a quarter second, so that the limit holds at any time scale users see
        throttler.bytesPerSecond(
            options.rateLimit(),
            Math.min(8192, options.rateLimit()),
            Math.max(8192, options.rateLimit() / 4));
      } else {
        throttler = null;
      }
    }

    private synchronized HttpExchange http() {
      if (http == null) {
        OkHttpClient plain = plainClient(options);
        http = new HttpExchange(plain, () -> tlsClient(plain, options), throttler);
        if (options.caFile() != null) {
          http.tls(); // TLS is wanted: set it up now, so that a bad --ca-file is refused at once
        }
      }
      return http;
    }

    /**
     * Opens the stores named for reading, their chunks laid out as {@code layout} (a local
     * directory or HTTP(S) for {@link ChunkLayout#CASYNC}); with more than one, they are mirrors of
     * one datastore, read in the order given.
     */
    public ChunkStore open(List<String> specs, ChunkLayout layout) {
      if (specs.isEmpty()) {
        throw new IllegalArgumentException("no store given");
      }
      List<ChunkStore> stores = new ArrayList<>();
      for (String spec : specs) {
        stores.add(openOne(spec, layout));
      }
      return stores.size() == 1 ? stores.get(0) : new MirrorStore(stores);
    }

    /** Opens a store that backups can write to, as {@link WriteOptions#DEFAULT} says. */
    public WritableStore openWritable(String spec) throws IOException {
      return openWritable(spec, WriteOptions.DEFAULT);
    }

    /**
     * Opens a store that backups can write to: a local datastore (created if missing, with what
     * Proxmox Backup Server has at a datastore's root: {@code .lock} and {@code .chunks}) or an S3
     * prefix. A datastore that a Proxmox Backup Server manages is refused with the reason and what
     * to do instead: locally one whose {@code .lock} or {@code .chunks} belongs to another user, on
     * S3 one with PBS 4's {@code PREFIX/.in-use} object. Reading such a datastore is always
     * allowed. See {@link WriteOptions} for the override (local only) and the full PBS layout.
     */
    public WritableStore openWritable(String spec, WriteOptions writing) throws IOException {
      switch (Scheme.of(spec)) {
        case S3 -> {
          if (writing.fullLayout()) {
            throw new IllegalArgumentException("--pbs-layout applies to local datastores only");
          }
          if (writing.asDatastoreOwner()) {
            throw new IllegalArgumentException(
                "--as-datastore-owner applies to local datastores only:"
                    + " in S3, a Proxmox Backup Server's garbage collection deletes chunks it did not write"
                    + " whoever writes them");
          }
          S3Store s3 = openS3(spec, options, http());
          try {
            s3.refuseIfInUse();
          } catch (IOException | RuntimeException e) {
            s3.close();
            throw e;
          }
          return s3;
        }
        case HTTP ->
            throw new IllegalArgumentException(
                "an HTTP store is read-only; back up to a local datastore or S3: " + spec);
        case PBS ->
            throw new IllegalArgumentException(
                "thaw never writes to a Proxmox Backup Server; back up to a local datastore or S3: "
                    + spec);
        case LOCAL, FILE_URL -> {
          Path root = Scheme.path(spec);
          return new LocalStore(
              root,
              throttler,
              ChunkLayout.DATASTORE,
              options.readTimeout(),
              LocalDatastore.openForWriting(root, writing));
        }
        default -> throw new IllegalArgumentException("unknown store scheme: " + spec);
      }
    }

    /**
     * Reads one file (a casync index, for example) from a path or an http(s) URL, with this
     * access's client, CA and credentials. A single attempt.
     *
     * @param what what the file is, for messages ("index")
     */
    public Fetched readFile(String spec, String what) throws IOException {
      switch (Scheme.of(spec)) {
        case HTTP -> {
          HttpUrl url = HttpUrl.parse(spec);
          if (url == null || url.pathSegments().get(url.pathSize() - 1).isEmpty()) {
            throw new IllegalArgumentException("not a file URL: " + spec);
          }
          String name = url.encodedPathSegments().get(url.pathSize() - 1);
          HttpStore dir =
              new HttpStore(
                  url.resolve("./"), http(), options.authorization(), ChunkLayout.DATASTORE);
          return new Fetched(dir.location(name), dir.readRelative(name, what));
        }
        case LOCAL, FILE_URL -> {
          Path p = Scheme.path(spec).toAbsolutePath();
          return new Fetched(p.toString(), LocalStore.read(p, what, ChunkStore.MAX_FILE_BYTES));
        }
        default ->
            throw new IllegalArgumentException(what + " must be a path or an http(s) URL: " + spec);
      }
    }

    private ChunkStore openOne(String spec, ChunkLayout layout) {
      Scheme scheme = Scheme.of(spec);
      if (scheme == Scheme.S3 && layout != ChunkLayout.DATASTORE) {
        throw new IllegalArgumentException(
            "read a casync store from a directory or over HTTP(S), not S3: " + spec);
      }
      if (scheme == Scheme.PBS && layout != ChunkLayout.DATASTORE) {
        throw new IllegalArgumentException(
            "a Proxmox Backup Server holds datastores, not casync stores: " + spec);
      }
      return switch (scheme) {
        case HTTP -> {
          HttpUrl url = HttpUrl.parse(spec);
          if (url == null) {
            throw new IllegalArgumentException("not a valid URL: " + spec);
          }
          yield new HttpStore(url, http(), options.authorization(), layout);
        }
        case S3 -> openS3(spec, options, http());
        case PBS ->
            PbsStore.open(
                PbsRepository.parse(spec.substring("pbs://".length())), options, throttler);
        case LOCAL, FILE_URL ->
            new LocalStore(Scheme.path(spec), throttler, layout, options.readTimeout());
        case UNKNOWN -> throw new IllegalArgumentException("unknown store scheme: " + spec);
      };
    }
  }

  private static S3Store openS3(String spec, Options options, HttpExchange http) {
    String rest = spec.substring("s3://".length());
    int slash = rest.indexOf('/');
    String bucket = slash < 0 ? rest : rest.substring(0, slash);
    String prefix = slash < 0 ? "" : rest.substring(slash + 1);
    while (prefix.endsWith("/")) {
      prefix = prefix.substring(0, prefix.length() - 1);
    }
    if (!bucket.matches("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")) {
      throw new IllegalArgumentException(
          "not an S3 bucket name (3-63 of a-z 0-9 . -): s3://" + bucket);
    }
    if (prefix.startsWith("/") || prefix.contains("//")) {
      throw new IllegalArgumentException("S3 prefix has an empty part: " + spec);
    }
    Map<String, String> env = options.env();
    S3Options o = options.s3();
    String region = o.region() != null ? o.region() : S3Credentials.region(env);
    HttpUrl endpoint;
    if (o.endpoint() != null) {
      endpoint = HttpUrl.parse(o.endpoint());
      if (endpoint == null) {
        throw new IllegalArgumentException("--s3-endpoint is not an http(s) URL: " + o.endpoint());
      }
    } else {
      endpoint = S3Store.awsEndpoint(region);
    }
    boolean ipHost =
        endpoint.host().matches("[0-9.]+")
            || endpoint.host().contains(":")
            || endpoint.host().equals("localhost");
    S3Store.Endpoint ep = new S3Store.Endpoint(endpoint, region, o.pathStyle() || ipHost);
    return new S3Store(bucket, prefix, ep, S3Credentials.find(env), http);
  }

  /** Trusts exactly the certificates in a PEM file (like curl --cacert). */
  private static void trust(OkHttpClient.Builder b, Path caFile) {
    String pem;
    try {
      pem = java.nio.file.Files.readString(caFile);
    } catch (java.io.IOException e) {
      throw new IllegalArgumentException("cannot read --ca-file " + caFile + ": " + e.getMessage());
    }
    okhttp3.tls.HandshakeCertificates.Builder hb = new okhttp3.tls.HandshakeCertificates.Builder();
    int n = 0;
    java.util.regex.Matcher m =
        java.util.regex.Pattern.compile(
                "-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----",
                java.util.regex.Pattern.DOTALL)
            .matcher(pem);
    while (m.find()) {
      try {
        hb.addTrustedCertificate(okhttp3.tls.Certificates.decodeCertificatePem(m.group()));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(
            "--ca-file " + caFile + " holds a certificate that does not parse");
      }
      n++;
    }
    if (n == 0) {
      throw new IllegalArgumentException("--ca-file " + caFile + " holds no PEM certificate");
    }
    okhttp3.tls.HandshakeCertificates hc = hb.build();
    b.sslSocketFactory(hc.sslSocketFactory(), hc.trustManager());
  }

  /** A client for http:// and https:// URLs alike (sets up TLS at once). */
  static OkHttpClient httpClient(Options o) {
    return tlsClient(plainClient(o), o);
  }

  /**
   * The client for https:// URLs: {@code plain}'s settings, connections and dispatcher, with TLS
   * (the system's CAs, or those of --ca-file), following redirects to http too.
   */
  static OkHttpClient tlsClient(OkHttpClient plain, Options o) {
    OkHttpClient.Builder b =
        plain
            .newBuilder()
            .connectionSpecs(List.of(ConnectionSpec.MODERN_TLS, ConnectionSpec.CLEARTEXT))
            .followSslRedirects(true);
    if (o.caFile() != null) {
      trust(b, o.caFile());
    }
    return b.build();
  }

  /**
   * The client for http:// URLs: no TLS set up, and a redirect to https handed back to {@link
   * HttpExchange}, which follows it with the TLS client.
   */
  static OkHttpClient plainClient(Options o) {
    OkHttpClient.Builder b = new OkHttpClient.Builder();
    Dispatcher d = new Dispatcher();
    d.setMaxRequests(Math.max(64, o.parallel() * 2));
    d.setMaxRequestsPerHost(Math.max(5, o.parallel() + 4));
    return b.socketFactory(new BufferedSockets())
        .dispatcher(d)
        .connectionPool(new ConnectionPool(Math.max(5, o.parallel() + 4), 5, TimeUnit.MINUTES))
        .connectTimeout(o.connectTimeout())
        .readTimeout(o.readTimeout())
        .writeTimeout(o.readTimeout())
        // one attempt's whole budget: a body trickling in slower than the read timeout cannot
        // hold a fetch forever, while a 4 MiB chunk still has room on a slow, shared link
        .callTimeout(o.readTimeout().multipliedBy(CALL_TIMEOUT_FACTOR))
        .retryOnConnectionFailure(true)
        .followRedirects(true)
        .followSslRedirects(false)
        .connectionSpecs(List.of(ConnectionSpec.CLEARTEXT))
        .build();
  }
}
