package dev.thaw.files;

import java.util.ArrayList;
import java.util.List;

/**
 * A path inside a filesystem, normalised: components without {@code .}, {@code ..} or empty names.
 */
record FsPath(List<String> parts) {
  /**
   * Parses {@code /a/b}, {@code a/./b} or {@code a/x/../b}.
   *
   * @throws FilesException when {@code ..} climbs above the root
   */
  static FsPath parse(String path) throws FilesException {
    List<String> parts = new ArrayList<>();
    for (String p : path.split("/")) {
      if (p.isEmpty() || p.equals(".")) {
        continue;
      }
      if (p.equals("..")) {
        if (parts.isEmpty()) {
          throw new FilesException("path escapes the filesystem's root: " + path);
        }
        parts.remove(parts.size() - 1);
        continue;
      }
      if (p.indexOf('\0') >= 0) {
        throw new FilesException("path holds a NUL character: " + path.replace("\0", "\\0"));
      }
      parts.add(p);
    }
    return new FsPath(List.copyOf(parts));
  }

  boolean root() {
    return parts.isEmpty();
  }

  /** The last name; "/" for the root. */
  String name() {
    return root() ? "/" : parts.get(parts.size() - 1);
  }

  /** {@code /a/b}. */
  String absolute() {
    return "/" + String.join("/", parts);
  }

  /** {@code a/b}, as archive tools name entries. */
  String relative() {
    return String.join("/", parts);
  }
}
