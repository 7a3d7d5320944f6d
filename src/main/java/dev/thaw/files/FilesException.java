package dev.thaw.files;

import java.io.IOException;

/**
 * A listing or copy that cannot be done as asked: a path that does not exist, a path that would
 * leave the filesystem's root or the destination, a file that is not regular, a destination that
 * exists, a filesystem thaw cannot read without root. The message says what to do.
 */
public class FilesException extends IOException {
  private static final long serialVersionUID = 1L;

  public FilesException(String message) {
    super(message);
  }
}
