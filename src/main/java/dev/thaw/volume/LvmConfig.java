package dev.thaw.volume;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * LVM2's metadata text (the "config" syntax of {@code lvm.conf} and {@code vgcfgbackup} files):
 * sections {@code name { ... }}, assignments {@code key = value} of integers, quoted strings and
 * flat arrays {@code [ ... ]}, {@code #} comments. Bounded in depth and in the number of values, so
 * hostile text costs at most its own size.
 */
final class LvmConfig {
  static final int MAX_DEPTH = 16;
  static final int MAX_VALUES = 1_000_000;

  /**
   * A section: its keys in order; values are {@link Long}, {@link String}, {@link List} or {@link
   * Section}.
   */
  static final class Section {
    final Map<String, Object> items = new LinkedHashMap<>();

    Section section(String key) {
      return items.get(key) instanceof Section s ? s : null;
    }

    String string(String key) {
      return items.get(key) instanceof String s ? s : null;
    }

    /** An integer value, or {@code dflt} when absent. */
    long number(String key, long dflt) throws VolumeException {
      Object v = items.get(key);
      if (v == null) {
        return dflt;
      }
      if (v instanceof Long l) {
        return l;
      }
      throw new VolumeException("'" + key + "' is not a number");
    }

    long number(String key) throws VolumeException {
      if (!items.containsKey(key)) {
        throw new VolumeException("'" + key + "' is missing");
      }
      return number(key, 0);
    }

    List<?> list(String key) {
      return items.get(key) instanceof List<?> l ? l : List.of();
    }
  }

  private final String text;
  private int pos;
  private int values;

  private LvmConfig(String text) {
    this.text = text;
  }

  static Section parse(String text) throws VolumeException {
    LvmConfig p = new LvmConfig(text);
    Section root = new Section();
    p.items(root, 0, false);
    return root;
  }

  private void items(Section into, int depth, boolean inSection) throws VolumeException {
    if (depth > MAX_DEPTH) {
      throw error("sections nested too deep");
    }
    while (true) {
      skipSpace();
      if (pos >= text.length()) {
        if (inSection) {
          throw error("unterminated section");
        }
        return;
      }
      char c = text.charAt(pos);
      if (c == '}') {
        if (!inSection) {
          throw error("unexpected '}'");
        }
        pos++;
        return;
      }
      String key = identifier();
      skipSpace();
      if (pos < text.length() && text.charAt(pos) == '{') {
        pos++;
        Section s = new Section();
        items(s, depth + 1, true);
        count();
        into.items.put(key, s);
      } else if (pos < text.length() && text.charAt(pos) == '=') {
        pos++;
        skipSpace();
        into.items.put(key, value());
      } else {
        throw error("expected '{' or '=' after '" + key + "'");
      }
    }
  }

  private Object value() throws VolumeException {
    if (pos >= text.length()) {
      throw error("missing value");
    }
    char c = text.charAt(pos);
    if (c == '[') {
      pos++;
      List<Object> list = new ArrayList<>();
      while (true) {
        skipSpace();
        if (pos >= text.length()) {
          throw error("unterminated array");
        }
        if (text.charAt(pos) == ']') {
          pos++;
          return list;
        }
        if (!list.isEmpty()) {
          if (text.charAt(pos) != ',') {
            throw error("expected ',' in array");
          }
          pos++;
          skipSpace();
        }
        if (pos < text.length() && text.charAt(pos) == '[') {
          throw error("nested array");
        }
        list.add(value());
      }
    }
    count();
    if (c == '"') {
      return string();
    }
    int start = pos;
    while (pos < text.length() && "+-.0123456789eE".indexOf(text.charAt(pos)) >= 0) {
      pos++;
    }
    String num = text.substring(start, pos);
    try {
      return Long.parseLong(num);
    } catch (NumberFormatException e) {
      try {
        return (long) Double.parseDouble(num); // floats appear only in settings thaw does not use
      } catch (NumberFormatException e2) {
        throw error("bad value '" + num + "'");
      }
    }
  }

  private String string() throws VolumeException {
    StringBuilder s = new StringBuilder();
    pos++;
    while (pos < text.length()) {
      char c = text.charAt(pos++);
      if (c == '"') {
        return s.toString();
      }
      if (c == '\\' && pos < text.length()) {
        c = text.charAt(pos++);
      }
      s.append(c);
    }
    throw error("unterminated string");
  }

  private String identifier() throws VolumeException {
    int start = pos;
    while (pos < text.length()) {
      char c = text.charAt(pos);
      if (!(Character.isLetterOrDigit(c) && c < 128) && "_.+-".indexOf(c) < 0) {
        break;
      }
      pos++;
    }
    if (start == pos) {
      throw error("expected a name");
    }
    return text.substring(start, pos);
  }

  private void skipSpace() {
    while (pos < text.length()) {
      char c = text.charAt(pos);
      if (c == '#') {
        while (pos < text.length() && text.charAt(pos) != '\n') {
          pos++;
        }
      } else if (Character.isWhitespace(c) || c == 0) {
        pos++;
      } else {
        return;
      }
    }
  }

  private void count() throws VolumeException {
    if (++values > MAX_VALUES) {
      throw error("more than " + MAX_VALUES + " values");
    }
  }

  private VolumeException error(String what) {
    int line = 1;
    for (int i = 0; i < Math.min(pos, text.length()); i++) {
      if (text.charAt(i) == '\n') {
        line++;
      }
    }
    return new VolumeException("LVM metadata line " + line + ": " + what);
  }
}
