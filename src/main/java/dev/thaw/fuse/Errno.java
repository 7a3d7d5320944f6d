package dev.thaw.fuse;

import java.io.IOException;
import java.io.PrintStream;
import java.time.Instant;
import ru.serce.jnrfuse.ErrorCodes;

/**
 * The FUSE boundary's one way to turn a failure into an errno: every callback runs through {@link
 * #call}, which catches everything (jffi would turn an escaping exception into a 0 return: a read
 * would look like the end of the file, a getattr like success), logs it, and answers a negative
 * errno. Thread-safe.
 */
final class Errno {
  /** A callback's body; returns its result (a negative errno for an expected refusal). */
  @FunctionalInterface
  interface Body {
    int run() throws Exception;
  }

  private final PrintStream log;

  Errno(PrintStream log) {
    this.log = log;
  }

  /**
   * Runs {@code body}; a failure is logged as {@code op path: reason} and answered with its errno.
   */
  int call(String op, String path, Body body) {
    try {
      return body.run();
    } catch (Throwable t) {
      try {
        warn(
            op
                + " "
                + path
                + " failed: "
                + (t instanceof IOException && t.getMessage() != null
                    ? t.getMessage()
                    : t.toString()));
      } catch (Throwable ignored) {
        // logging must never turn an errno into a 0
      }
      return -of(t);
    }
  }

  void warn(String msg) {
    log.println(Instant.now() + " thaw mount: " + msg);
    log.flush();
  }

  /**
   * The errno for a failure: a full or over-quota target is ENOSPC or EDQUOT (a guest sees a full
   * disk, not a broken one); everything else is EIO.
   */
  static int of(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      String m = String.valueOf(t.getMessage());
      if (m.contains("No space left on device")) {
        return ErrorCodes.ENOSPC();
      }
      if (m.contains("Disk quota exceeded")) {
        return ErrorCodes.EDQUOT();
      }
    }
    return ErrorCodes.EIO();
  }
}
