package dev.thaw.store;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * A validated snapshot name: {@code [ns/NS/]...TYPE/ID/TIME}, for example {@code
 * vm/100/2026-11-22T03:04:05Z}. Parsing refuses anything that could leave the datastore root
 * ({@code ..}, absolute paths, empty parts, unexpected characters), so a path built from it is
 * always below the root. Immutable.
 */
public record SnapshotPath(List<String> namespace, String type, String id, Instant time)
    implements Comparable<SnapshotPath> {
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9._-]{0,127}");
  private static final Pattern TIME = Pattern.compile("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ");
  private static final DateTimeFormatter FORMAT =
      DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss'Z'").withZone(ZoneOffset.UTC);

  /** The backup types a datastore holds. */
  public static final List<String> TYPES = List.of("vm", "ct", "host");

  public SnapshotPath {
    namespace = List.copyOf(namespace);
  }

  /** Parses a snapshot name; the message of the exception says what is wrong. */
  public static SnapshotPath parse(String s) {
    if (s.startsWith("/") || s.contains("\\")) {
      throw new IllegalArgumentException("snapshot name must be relative (TYPE/ID/TIME): " + s);
    }
    String[] parts = s.split("/", -1);
    for (String p : parts) {
      if (p.isEmpty() || p.equals(".") || p.equals("..")) {
        throw new IllegalArgumentException("snapshot name has an empty, '.' or '..' part: " + s);
      }
    }
    if (parts.length < 3 || (parts.length - 3) % 2 != 0) {
      throw new IllegalArgumentException("snapshot name must be [ns/NAME/]TYPE/ID/TIME: " + s);
    }
    List<String> ns = new ArrayList<>();
    for (int i = 0; i < parts.length - 3; i += 2) {
      if (!parts[i].equals("ns") || !NAME.matcher(parts[i + 1]).matches()) {
        throw new IllegalArgumentException("bad namespace part in snapshot name: " + s);
      }
      ns.add(parts[i + 1]);
    }
    String type = parts[parts.length - 3];
    String id = parts[parts.length - 2];
    String time = parts[parts.length - 1];
    if (!TYPES.contains(type)) {
      throw new IllegalArgumentException(
          "snapshot type must be vm, ct or host, not '" + type + "': " + s);
    }
    if (!NAME.matcher(id).matches()) {
      throw new IllegalArgumentException("bad backup id '" + id + "' in snapshot name: " + s);
    }
    return new SnapshotPath(ns, type, id, parseTime(time, s));
  }

  /** Parses an RFC 3339 UTC time as used in snapshot names. */
  static Instant parseTime(String time, String context) {
    if (!TIME.matcher(time).matches()) {
      throw new IllegalArgumentException(
          "bad snapshot time '" + time + "' (want 2026-11-22T03:04:05Z): " + context);
    }
    try {
      return Instant.parse(time);
    } catch (DateTimeParseException e) {
      throw new IllegalArgumentException("bad snapshot time '" + time + "': " + context);
    }
  }

  /** Whether {@code s} is a well-formed snapshot time. */
  static boolean isTime(String s) {
    if (!TIME.matcher(s).matches()) {
      return false;
    }
    try {
      Instant.parse(s);
      return true;
    } catch (DateTimeParseException e) {
      return false;
    }
  }

  /** Whether {@code s} is a well-formed id or namespace name. */
  static boolean isName(String s) {
    return NAME.matcher(s).matches();
  }

  /** The time part as written in names. */
  public String timeString() {
    return FORMAT.format(time);
  }

  /** The group: {@code [ns/NS/]TYPE/ID}. */
  public String group() {
    StringBuilder sb = new StringBuilder();
    for (String n : namespace) {
      sb.append("ns/").append(n).append('/');
    }
    return sb.append(type).append('/').append(id).toString();
  }

  /** The relative directory path, '/'-separated, same as {@link #toString()}. */
  @Override
  public String toString() {
    return group() + "/" + timeString();
  }

  @Override
  public int compareTo(SnapshotPath o) {
    int c = group().compareTo(o.group());
    return c != 0 ? c : time.compareTo(o.time);
  }

  /**
   * Checks the name of a file in a snapshot directory: a plain name (no path, no dot file), so that
   * no store can be made to read or write outside the snapshot.
   *
   * @return {@code file}
   * @throws IllegalArgumentException for anything else
   */
  public static String checkFileName(String file) {
    if (file.isEmpty() || file.contains("/") || file.contains("\\") || file.startsWith(".")) {
      throw new IllegalArgumentException("bad snapshot file name: " + file);
    }
    return file;
  }
}
