package dev.thaw.store;

import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.ConnectException;
import java.net.SocketTimeoutException;
import java.net.UnknownHostException;
import java.util.function.Supplier;
import javax.net.ssl.SSLException;
import okhttp3.Headers;
import okhttp3.HttpUrl;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;
import okhttp3.ResponseBody;
import okio.BufferedSource;
import okio.Okio;
import okio.Throttler;

/**
 * One HTTP request as the HTTP and S3 stores make it: a single attempt whose transport faults
 * become {@link StoreException}s that say whether another attempt may help, and whose body is read
 * whole, through the process's rate limit when there is one, but never beyond a bound the caller
 * sets: a {@code Content-Length} above it is refused before the body is read, and a body without
 * one is read no further than one byte past it. A successful body can be read into a pooled buffer:
 * with a {@code Content-Length}, straight into an array of that size. Status codes are left to the
 * caller, which knows what a 404 or 403 means for its objects. Thread-safe.
 */
final class HttpExchange {
  /**
   * A response read to the end: its body in {@code body}, or for a successful answer read into a
   * pool, in {@code buffer} (the caller's reference; {@code body} is then empty).
   */
  record Reply(int code, String message, Headers headers, byte[] body, Buffer buffer) {
    /**
     * What an error answer means for the object, the same for every HTTP store: 404 and 410 not
     * found, 401 and 403 access denied ({@code deniedHint} says what to check), anything else a
     * failure that 5xx, 429 and 408 (or {@code alsoRetryable}) make worth another attempt.
     *
     * @param where the object as messages show it (a URL without credentials, s3://...)
     * @param detail the status as messages show it ("HTTP 503", "HTTP 403 AccessDenied")
     */
    StoreException failure(
        String what, String where, String detail, String deniedHint, boolean alsoRetryable) {
      if (code == 404 || code == 410) {
        return new NotFoundException(what + " not found: " + where + " (" + detail + ")");
      }
      if (code == 401 || code == 403) {
        return new StoreException(
            what + ": access denied (" + detail + ") for " + where + ": " + deniedHint, false);
      }
      return new StoreException(
          what + ": " + detail + " " + message + " from " + where,
          retryableStatus(code) || alsoRetryable);
    }
  }

  private final OkHttpClient plain;
  private final Supplier<OkHttpClient> tls;
  private OkHttpClient tlsClient;
  private final Throttler throttler;

  /**
   * An exchange whose requests, plain or TLS, all go through {@code client}.
   *
   * @param throttler the process-wide rate limit, or null for none
   */
  HttpExchange(OkHttpClient client, Throttler throttler) {
    this(client, () -> client, throttler);
  }

  /**
   * An exchange that sets up TLS only once a request needs it: loading the system's CA certificates
   * and the TLS machinery took about 0.15 s of a command's start on JDK 17.
   *
   * @param plain the client for http:// URLs; built without TLS and without following redirects to
   *     https, which come back here and are followed once through {@code tls}
   * @param tls makes the client for https:// URLs (called at most once), sharing {@code plain}'s
   *     connections and dispatcher
   * @param throttler the process-wide rate limit, or null for none
   */
  HttpExchange(OkHttpClient plain, Supplier<OkHttpClient> tls, Throttler throttler) {
    this.plain = plain;
    this.tls = tls;
    this.throttler = throttler;
  }

  /** The client for https:// URLs, made on the first call. */
  synchronized OkHttpClient tls() {
    if (tlsClient == null) {
      tlsClient = tls.get();
    }
    return tlsClient;
  }

  /**
   * Runs {@code request} through the client its scheme needs. A plain client hands back a redirect
   * to https: a GET or HEAD is sent there once through the TLS client (which follows any further
   * redirects), without its Authorization header when the host changes, as OkHttp itself does; a
   * request with a body gets the redirect as its answer.
   */
  private Response call(Request request) throws IOException {
    if (request.url().isHttps()) {
      return tls().newCall(request).execute();
    }
    Response r = plain.newCall(request).execute();
    String location = r.isRedirect() ? r.header("Location") : null;
    HttpUrl to = location == null ? null : request.url().resolve(location);
    boolean bodiless = request.method().equals("GET") || request.method().equals("HEAD");
    if (to == null || !to.isHttps() || !bodiless) {
      return r;
    }
    r.close();
    Request.Builder b = request.newBuilder().url(to);
    if (!to.host().equals(request.url().host())) {
      b.removeHeader("Authorization");
    }
    return tls().newCall(b.build()).execute();
  }

  private static final byte[] EMPTY = new byte[0];

  /** Error answers are read up to this many bytes (their text goes into messages). */
  private static final long MAX_ERROR_BODY = 64 * 1024;

  /**
   * Executes {@code request} once and reads its body.
   *
   * @param what the object, for messages ("chunk 12ab…", "index.json.blob")
   * @param shown the object's URL as it may appear in messages (no credentials)
   * @param maxBytes the largest successful body the object can have; a larger one is a {@link
   *     StoreException} that no retry mends. Error answers are cut at 64 KiB.
   * @param pool where a successful body goes ({@link Reply#buffer}), or null for a byte array
   *     ({@link Reply#body}); the buffer goes back to the pool if the read fails
   * @throws StoreException for transport faults: retryable unless TLS failed
   */
  Reply execute(Request request, String what, String shown, long maxBytes, BufferPool pool)
      throws StoreException {
    HttpUrl url = request.url();
    try (Response resp = call(request)) {
      ResponseBody body = resp.body();
      boolean ok = resp.code() == 200;
      long limit = ok ? maxBytes : MAX_ERROR_BODY;
      long declared = body.contentLength();
      if (ok && declared > limit) {
        throw new StoreException(
            what
                + ": the server announces "
                + declared
                + " bytes for "
                + shown
                + ", more than the "
                + limit
                + " it can have; the object is damaged",
            false);
      }
      // a body shorter than its Content-Length fails here (retryable, below)
      BufferedSource source =
          throttler != null && ok ? Okio.buffer(throttler.source(body.source())) : body.source();
      try (source) {
        if (ok && pool != null && declared >= 0) {
          // the size is known: read straight into an array of it, no copy and no growing buffer
          Buffer b = pool.take((int) declared);
          boolean read = false;
          try {
            Sources.readFully(source, b.array(), 0, (int) declared);
            read = true;
          } finally {
            if (!read) {
              b.release();
            }
          }
          return new Reply(resp.code(), resp.message(), resp.headers(), EMPTY, b);
        }
        okio.Buffer buf = new okio.Buffer();
        while (buf.size() <= limit) {
          if (source.read(buf, 64 * 1024) < 0) {
            break;
          }
        }
        if (buf.size() > limit) {
          if (ok) {
            throw new StoreException(
                what
                    + ": the body from "
                    + shown
                    + " exceeds the "
                    + limit
                    + " bytes it can have; the object is damaged",
                false);
          }
        }
        if (ok && pool != null) {
          Buffer b = pool.take((int) buf.size());
          Sources.readFully(buf, b.array(), 0, b.length());
          return new Reply(resp.code(), resp.message(), resp.headers(), EMPTY, b);
        }
        // an error page's beginning is enough for a message
        byte[] bytes = buf.size() > limit ? buf.readByteArray(limit) : buf.readByteArray();
        return new Reply(resp.code(), resp.message(), resp.headers(), bytes, null);
      }
    } catch (StoreException e) {
      throw e;
    } catch (UnknownHostException e) {
      throw new StoreException(what + ": unknown host in " + shown, true, e);
    } catch (SSLException e) {
      String why =
          String.valueOf(e.getMessage()).contains("PKIX")
              ? "the server's certificate is not signed by a trusted CA (name its CA with --ca-file)"
              : e.getMessage();
      throw new StoreException(what + ": TLS failure with " + shown + ": " + why, false, e);
    } catch (ConnectException e) {
      throw new StoreException(
          what
              + ": cannot connect to "
              + url.host()
              + ":"
              + url.port()
              + " (connection refused or unreachable) for "
              + shown,
          true,
          e);
    } catch (SocketTimeoutException e) {
      throw new StoreException(
          what + ": timed out talking to " + url.host() + ":" + url.port() + " for " + shown,
          true,
          e);
    } catch (InterruptedIOException e) {
      throw new StoreException(what + ": timed out fetching " + shown, true, e);
    } catch (IOException e) {
      throw new StoreException(what + ": " + e.getMessage() + " fetching " + shown, true, e);
    }
  }

  /** Whether a status is worth another attempt: 5xx, 429 (slow down), 408. */
  static boolean retryableStatus(int code) {
    return code >= 500 || code == 429 || code == 408;
  }

  /**
   * Closes the client's idle connections and threads (the client may be shared: only idle ones).
   */
  void close() {
    plain.connectionPool().evictAll(); // the TLS client's pool too: they share one
  }
}
