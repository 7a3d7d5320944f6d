package dev.thaw.store;

/** The store does not have the object (a missing chunk, snapshot or file). Not retryable. */
public class NotFoundException extends StoreException {
  private static final long serialVersionUID = 1L;

  public NotFoundException(String message) {
    super(message, false);
  }

  public NotFoundException(String message, Throwable cause) {
    super(message, false, cause);
  }
}
