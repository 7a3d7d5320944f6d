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
    return i == 0
        ? String.format(Locale.ROOT, "%.0f B", b)
        : String.format(Locale.ROOT, "%.1f %s", b, u[i]);
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
    return h > 0
        ? String.format(Locale.ROOT, "%d:%02d:%02d", h, m, s)
        : String.format(Locale.ROOT, "%d:%02d", m, s);
  }

  /** Parses a rate such as 50M or 50M/s (bytes per second, binary units); 0 for null. */
  static long parseRate(String s) {
    return s == null ? 0 : parseSize(s.replaceFirst("(?i)/s$", ""));
  }

  /** Parses a size such as 512M, 2G, 1048576 or 64MiB (binary units). */
  static long parseSize(String s) {
    String t = s.trim().toUpperCase(Locale.ROOT).replace("IB", "").replace("B", "");
    long mult = 1;
    if (!t.isEmpty() && Character.isLetter(t.charAt(t.length() - 1))) {
      mult =
          switch (t.charAt(t.length() - 1)) {
            case 'K' -> 1L << 10;
            case 'M' -> 1L << 20;
            case 'G' -> 1L << 30;
            case 'T' -> 1L << 40;
            default -> throw new IllegalArgumentException("bad size: " + s);
          };
      t = t.substring(0, t.length() - 1);
    }
    try {
      return Math.multiplyExact(Long.parseLong(t.trim()), mult);
    } catch (NumberFormatException | ArithmeticException e) {
      throw new IllegalArgumentException("bad size: " + s + " (use e.g. 512M or 2G)");
    }
  }

  /** Parses a duration such as 90s, 500ms, 2m, 1h or a plain number of seconds. */
  static java.time.Duration parseDuration(String s) {
    java.util.regex.Matcher m =
        java.util.regex.Pattern.compile("(\\d{1,9})\\s*(ms|s|m|h)?")
            .matcher(s.trim().toLowerCase(Locale.ROOT));
    if (!m.matches()) {
      throw new IllegalArgumentException("bad duration: " + s + " (use e.g. 90s, 5m or 500ms)");
    }
    long n = Long.parseLong(m.group(1));
    String unit = m.group(2) == null ? "s" : m.group(2);
    java.time.Duration d =
        switch (unit) {
          case "ms" -> java.time.Duration.ofMillis(n);
          case "m" -> java.time.Duration.ofMinutes(n);
          case "h" -> java.time.Duration.ofHours(n);
          default -> java.time.Duration.ofSeconds(n);
        };
    if (d.compareTo(java.time.Duration.ofDays(365)) > 0) {
      throw new IllegalArgumentException("duration too long: " + s + " (at most 365 days)");
    }
    return d;
  }
}
