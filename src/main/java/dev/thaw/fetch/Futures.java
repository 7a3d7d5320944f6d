package dev.thaw.fetch;

import java.io.IOException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * The failure inside a chunk future: {@link CompletableFuture}s wrap it in a {@link
 * CompletionException} or {@link ExecutionException}; readers want the {@link ChunkFetchException}
 * (or whatever failed) itself, which names the chunk. Stateless.
 *
 * @see java.util.concurrent.CompletableFuture
 */
public final class Futures {
  private Futures() {}

  /** {@code t} without the future's wrappers around it. */
  public static Throwable cause(Throwable t) {
    Throwable c = t;
    while ((c instanceof CompletionException || c instanceof ExecutionException)
        && c.getCause() != null) {
      c = c.getCause();
    }
    return c;
  }

  /**
   * {@link #cause} as an {@link IOException}: itself when it is one, else wrapped, its message
   * kept.
   */
  public static IOException asIOException(Throwable t) {
    Throwable c = cause(t);
    return c instanceof IOException io ? io : new IOException(String.valueOf(c.getMessage()), c);
  }
}
