package dev.thaw.cli;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import jnr.ffi.LibraryLoader;

/**
 * The mount process's side of the launcher's handshake for a detached mount. The launcher ({@code
 * mount-scripts/thaw}) starts one JVM in a session of its own, with the user's terminal on stdin,
 * stdout and stderr (so that errors, warnings and a passphrase prompt reach the user while the
 * mount starts) and a pipe on the descriptor {@code --ready-fd} names. Once the mount answers,
 * {@link #detach} moves stdout and stderr to the mount's log and stdin to {@code /dev/null}, then
 * writes {@code ready} on the pipe: the launcher returns and the terminal is free. A mount that
 * fails before that simply exits with its message on the terminal.
 */
final class Detach {
  private static final int O_RDONLY = 0;
  private static final int O_WRONLY = 1;
  private static final int O_APPEND = 02000;

  /** The few C calls it takes to move this process's own standard descriptors (jnr-ffi). */
  public interface LibC {
    int open(String path, int flags, int mode);

    int dup2(int oldFd, int newFd);

    int close(int fd);
  }

  private Detach() {}

  /**
   * Lets go of the terminal: stdout and stderr to {@code log} (made before, without following a
   * link: {@link MountLog#create}), stdin from {@code /dev/null}; then tells the launcher on {@code
   * readyFd}. The messages printed before are the user's last from this process.
   */
  static void detach(int readyFd, Path log) throws IOException {
    System.out.flush();
    System.err.flush();
    LibC c = LibraryLoader.create(LibC.class).load("c");
    int out = c.open(log.toString(), O_WRONLY | O_APPEND, 0);
    int in = c.open("/dev/null", O_RDONLY, 0);
    if (out < 0 || in < 0) {
      throw new IOException(
          "cannot open the mount log " + log + " to move this process's output there");
    }
    if (c.dup2(out, 1) < 0 || c.dup2(out, 2) < 0 || c.dup2(in, 0) < 0) {
      throw new IOException("cannot move this process's output to " + log);
    }
    c.close(out);
    c.close(in);
    try (OutputStream ready =
        Files.newOutputStream(Path.of("/proc/self/fd", Integer.toString(readyFd)))) {
      ready.write("ready\n".getBytes(StandardCharsets.US_ASCII));
    }
    c.close(readyFd);
  }

  /** A line for the log, now that stderr goes there. */
  static void log(PrintStream err, String line) {
    err.println(line);
    err.flush();
  }
}
