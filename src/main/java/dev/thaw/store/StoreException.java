package dev.thaw.store;

import java.io.IOException;

/**
 * A store could not deliver an object. {@link #retryable()} tells the fetch pipeline whether
 * another attempt may succeed (connection faults, 5xx, 429, truncated bodies) or not (404, 403, a
 * malformed request). The message names the object's location (path or URL).
 */
public class StoreException extends IOException {
  private static final long serialVersionUID = 1L;
  private final boolean retryable;

  public StoreException(String message, boolean retryable, Throwable cause) {
    super(message, cause);
    this.retryable = retryable;
  }

  public StoreException(String message, boolean retryable) {
    this(message, retryable, null);
  }

  /** Whether a later attempt may succeed. */
  public boolean retryable() {
    return retryable;
  }
}
