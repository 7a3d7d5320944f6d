package dev.thaw.cli;

import java.util.Locale;

/** Human-readable sizes, rates and durations. */
final class Units {
  private Units() {}

  static String bytes(double b) {
    String[] u = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int i = 0;
    while (b >= 1024 && i < u.length - 1) {
      b /= 1024;
      i++;
    }
    return i == 0 ? String.format(Locale.ROOT, "%.0f B", b) : String.format(Locale.ROOT, "%.1f %s", b, u[i]);
  }

  static String rate(long bytes, long nanos) {
    return String.format(Locale.ROOT, "%.1f MiB/s", mibPerSecond(bytes, nanos));
  }

  static double mibPerSecond(long bytes, long nanos) {
    return nanos <= 0 ? 0 : bytes / 1048576.0 / (nanos / 1e9);
  }

  static String seconds(long nanos) {
    return String.format(Locale.ROOT, "%.1f s", nanos / 1e9);
  }

  static String clock(long seconds) {
    if (seconds < 0) {
      return "--:--";
    }
    long h = seconds / 3600;
    long m = (seconds % 3600) / 60;
    long s = seconds % 60;
    return h > 0 ? String.format(Locale.ROOT, "%d:%02d:%02d", h, m, s) : String.format(Locale.ROOT, "%d:%02d", m, s);
  }
}
