package dev.thaw.format;

import java.io.IOException;

/**
 * Data that does not parse or does not verify: wrong magic, bad length, checksum or digest
 * mismatch, failed authentication. Never retried as if it were a network fault, except that a chunk
 * body failing verification is refetched once by the fetch pipeline.
 */
public class FormatException extends IOException {
  private static final long serialVersionUID = 1L;

  public FormatException(String message) {
    super(message);
  }

  public FormatException(String message, Throwable cause) {
    super(message, cause);
  }
}
