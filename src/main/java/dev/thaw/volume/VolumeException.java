package dev.thaw.volume;

/** A table or metadata that cannot be trusted: it yields no volumes and a warning. */
final class VolumeException extends Exception {
  private static final long serialVersionUID = 1L;

  VolumeException(String message) {
    super(message);
  }
}
