package dev.thaw.cli;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Prints progress on stderr: a live bar (percent, MiB/s, ETA, zero share) when stderr is a
 * terminal, otherwise a plain line every few seconds. Runs on its own daemon thread.
 */
final class ProgressPrinter implements AutoCloseable {
  /** How progress is shown. */
  enum Mode {
    AUTO,
    TTY,
    PLAIN,
    NONE
  }

  /** What the printer shows; byte counts of image data. */
  record Sample(long total, long done, long zero, long elapsedNanos) {}

  private final ScheduledExecutorService timer;
  private final boolean tty;
  private final PrintStream err;
  private final Supplier<Sample> source;
  private final String label;
  private long lastDone;
  private long lastNanos;
  private double smoothRate = -1;

  ProgressPrinter(Mode mode, String label, Supplier<Sample> source, PrintStream err) {
    this.label = label;
    this.source = source;
    this.err = err;
    Mode m = mode == Mode.AUTO ? (stderrIsTerminal() ? Mode.TTY : Mode.PLAIN) : mode;
    this.tty = m == Mode.TTY;
    if (m == Mode.NONE) {
      timer = null;
      return;
    }
    timer =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "thaw-progress");
              t.setDaemon(true);
              return t;
            });
    long period = tty ? 250 : 5000;
    var unused =
        timer.scheduleAtFixedRate(
            this::print, period, period, TimeUnit.MILLISECONDS); // ended by close()
  }

  static boolean stderrIsTerminal() {
    try {
      String target = Files.readSymbolicLink(Path.of("/proc/self/fd/2")).toString();
      return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty");
    } catch (Exception e) {
      return false;
    }
  }

  private synchronized void print() {
    Sample s = source.get();
    long now = s.elapsedNanos();
    double instant = now > lastNanos ? (s.done() - lastDone) / ((now - lastNanos) / 1e9) : 0;
    smoothRate = smoothRate < 0 ? instant : 0.7 * smoothRate + 0.3 * instant;
    lastDone = s.done();
    lastNanos = now;
    double pct = s.total() == 0 ? 100 : 100.0 * s.done() / s.total();
    long eta = smoothRate > 0 ? (long) ((s.total() - s.done()) / smoothRate) : -1;
    double zeroShare = s.done() == 0 ? 0 : 100.0 * s.zero() / s.done();
    if (tty) {
      int width = 24;
      int filled = (int) Math.min(width, Math.round(pct / 100 * width));
      String bar = "#".repeat(filled) + ".".repeat(width - filled);
      err.printf(
          Locale.ROOT,
          "\r%s [%s] %5.1f%%  %s / %s  %7.1f MiB/s  ETA %s  zero %2.0f%%\033[K",
          label,
          bar,
          pct,
          Units.bytes(s.done()),
          Units.bytes(s.total()),
          smoothRate / 1048576,
          Units.clock(eta),
          zeroShare);
    } else {
      err.printf(
          Locale.ROOT,
          "%s: %.1f%% (%s of %s), %.1f MiB/s, ETA %s, zero %.0f%%%n",
          label,
          pct,
          Units.bytes(s.done()),
          Units.bytes(s.total()),
          smoothRate / 1048576,
          Units.clock(eta),
          zeroShare);
    }
    err.flush();
  }

  @Override
  public synchronized void close() {
    if (timer != null) {
      timer.shutdownNow();
      if (tty) {
        err.print("\r\033[K");
        err.flush();
      }
    }
  }
}
