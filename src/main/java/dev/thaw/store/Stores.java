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
  private Stores() {}

  /** Settings that shape a store's connections. */
  public record Options(int parallel, Duration connectTimeout, Duration readTimeout) {
    /** Defaults for {@code parallel} concurrent fetches. */
    public static Options defaults(int parallel) {
      return new Options(parallel, Duration.ofSeconds(10), Duration.ofSeconds(30));
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
      return new HttpStore(url, httpClient(options));
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
    Dispatcher d = new Dispatcher();
    d.setMaxRequests(Math.max(64, o.parallel() * 2));
    d.setMaxRequestsPerHost(Math.max(5, o.parallel() + 4));
    return new OkHttpClient.Builder()
        .dispatcher(d)
        .connectionPool(new ConnectionPool(Math.max(5, o.parallel() + 4), 5, TimeUnit.MINUTES))
        .connectTimeout(o.connectTimeout())
        .readTimeout(o.readTimeout())
        .writeTimeout(o.readTimeout())
        .retryOnConnectionFailure(true)
        .followRedirects(true)
        .build();
  }
}
