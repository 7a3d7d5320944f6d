package dev.thaw.store;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import okhttp3.ConnectionPool;
import okhttp3.Dispatcher;
import okhttp3.HttpUrl;
import okhttp3.OkHttpClient;

/**
 * Opens stores from the names users give: a path or {@code file:///path} (local datastore),
 * {@code http(s)://host/prefix} (static HTTP datastore, read-only). {@code s3://} is reserved.
 */
public final class Stores {
  /** A call (connect, request, whole body) may take this many read timeouts at most. */
  static final int CALL_TIMEOUT_FACTOR = 10;

  private Stores() {}

  /**
   * Settings that shape a store's connections. Each request is one attempt with its own
   * timeouts: {@code connectTimeout} to connect, {@code readTimeout} for any wait for bytes, and
   * {@value #CALL_TIMEOUT_FACTOR} times {@code readTimeout} for the whole request and body.
   *
   * @param caFile PEM certificates to trust for HTTPS instead of the system's, or null
   * @param authorization an {@code Authorization} header value for HTTP stores, or null; never
   *     logged
   */
  public record Options(int parallel, Duration connectTimeout, Duration readTimeout, Path caFile,
      String authorization) {
    /** Defaults for {@code parallel} concurrent fetches. */
    public static Options defaults(int parallel) {
      return new Options(parallel, Duration.ofSeconds(10), Duration.ofSeconds(30), null, null);
    }

    public Options withTls(Path caFile, String authorization) {
      return new Options(parallel, connectTimeout, readTimeout, caFile, authorization);
    }

    @Override
    public String toString() {
      return "Options[parallel=" + parallel + ", caFile=" + caFile + (authorization != null ? ", auth=***" : "") + "]";
    }
  }

  /** Opens a store for reading. */
  public static ChunkStore open(String spec, Options options) {
    String lower = spec.toLowerCase(java.util.Locale.ROOT);
    if (lower.startsWith("http://") || lower.startsWith("https://")) {
      HttpUrl url = HttpUrl.parse(spec);
      if (url == null) {
        throw new IllegalArgumentException("not a valid URL: " + spec);
      }
      return new HttpStore(url, httpClient(options), options.authorization());
    }
    return openLocal(spec);
  }

  /** Opens a store that backups can write to (a local datastore, created if missing). */
  public static WritableStore openWritable(String spec) {
    String lower = spec.toLowerCase(java.util.Locale.ROOT);
    if (lower.startsWith("http://") || lower.startsWith("https://")) {
      throw new IllegalArgumentException("an HTTP store is read-only; back up to a local datastore: " + spec);
    }
    return openLocal(spec);
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
    java.util.regex.Matcher m = java.util.regex.Pattern
        .compile("-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", java.util.regex.Pattern.DOTALL)
        .matcher(pem);
    while (m.find()) {
      try {
        hb.addTrustedCertificate(okhttp3.tls.Certificates.decodeCertificatePem(m.group()));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("--ca-file " + caFile + " holds a certificate that does not parse");
      }
      n++;
    }
    if (n == 0) {
      throw new IllegalArgumentException("--ca-file " + caFile + " holds no PEM certificate");
    }
    okhttp3.tls.HandshakeCertificates hc = hb.build();
    b.sslSocketFactory(hc.sslSocketFactory(), hc.trustManager());
  }

  private static LocalStore openLocal(String spec) {
    String lower = spec.toLowerCase(java.util.Locale.ROOT);
    if (lower.startsWith("s3://")) {
      throw new IllegalArgumentException("S3 stores are not supported yet: " + spec);
    }
    if (lower.startsWith("file:")) {
      return new LocalStore(Path.of(URI.create(spec)));
    }
    if (lower.matches("^[a-z][a-z0-9+.-]*://.*")) {
      throw new IllegalArgumentException("unknown store scheme: " + spec);
    }
    return new LocalStore(Path.of(spec));
  }

  static OkHttpClient httpClient(Options o) {
    OkHttpClient.Builder b = new OkHttpClient.Builder();
    if (o.caFile() != null) {
      trust(b, o.caFile());
    }
    Dispatcher d = new Dispatcher();
    d.setMaxRequests(Math.max(64, o.parallel() * 2));
    d.setMaxRequestsPerHost(Math.max(5, o.parallel() + 4));
    return b
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
        .build();
  }
}
