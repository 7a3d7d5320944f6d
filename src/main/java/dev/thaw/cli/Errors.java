package dev.thaw.cli;

import dev.thaw.fetch.Futures;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.NoSuchFileException;

/** Turns exceptions into one-line messages for users. */
final class Errors {
  private Errors() {}

  static String describe(Throwable t) {
    Throwable c = Futures.cause(t);
    while (c instanceof java.io.UncheckedIOException && c.getCause() != null) {
      c = Futures.cause(c.getCause());
    }
    if (c instanceof NoSuchFileException e) {
      return "no such file: " + e.getFile();
    }
    if (c instanceof AccessDeniedException e) {
      return "permission denied: " + e.getFile();
    }
    if (c instanceof FileAlreadyExistsException e) {
      return "already exists: " + e.getFile();
    }
    String m = c.getMessage();
    return m == null || m.isBlank() ? c.toString() : m;
  }
}
