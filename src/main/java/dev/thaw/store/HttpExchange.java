package dev.thaw.store;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.ConnectException;
import java.net.SocketTimeoutException;
import java.net.UnknownHostException;
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
 * become {@link StoreException}s that say whether another attempt may help, and whose body is
 * read whole, through the process's rate limit when there is one. Status codes are left to the
 * caller, which knows what a 404 or 403 means for its objects. Thread-safe.
 */
final class HttpExchange {
  /** A response read to the end. */
  record Reply(int code, String message, Headers headers, byte[] body) {}

  private final OkHttpClient client;
  private final Throttler throttler;

  /** @param throttler the process-wide rate limit, or null for none */
  HttpExchange(OkHttpClient client, Throttler throttler) {
    this.client = client;
    this.throttler = throttler;
  }

  /**
   * Executes {@code request} once and reads its body.
   *
   * @param what the object, for messages ("chunk 12ab…", "index.json.blob")
   * @param shown the object's URL as it may appear in messages (no credentials)
   * @throws StoreException for transport faults: retryable unless TLS failed
   */
  Reply execute(Request request, String what, String shown) throws StoreException {
    HttpUrl url = request.url();
    try (Response resp = client.newCall(request).execute()) {
      ResponseBody body = resp.body();
      byte[] bytes;
      if (throttler != null && resp.code() == 200) {
        try (BufferedSource s = Okio.buffer(throttler.source(body.source()))) {
          bytes = s.readByteArray();
        }
      } else {
        // a body shorter than its Content-Length fails here (retryable, below)
        bytes = body.bytes();
      }
      return new Reply(resp.code(), resp.message(), resp.headers(), bytes);
    } catch (UnknownHostException e) {
      throw new StoreException(what + ": unknown host in " + shown, true, e);
    } catch (SSLException e) {
      String why = String.valueOf(e.getMessage()).contains("PKIX")
          ? "the server's certificate is not signed by a trusted CA (name its CA with --ca-file)"
          : e.getMessage();
      throw new StoreException(what + ": TLS failure with " + shown + ": " + why, false, e);
    } catch (ConnectException e) {
      throw new StoreException(what + ": cannot connect to " + url.host() + ":" + url.port()
          + " (connection refused or unreachable) for " + shown, true, e);
    } catch (SocketTimeoutException e) {
      throw new StoreException(what + ": timed out talking to " + url.host() + ":" + url.port()
          + " for " + shown, true, e);
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

  /** Closes the client's idle connections and threads (the client may be shared: only idle ones). */
  void close() {
    client.connectionPool().evictAll();
  }
}
