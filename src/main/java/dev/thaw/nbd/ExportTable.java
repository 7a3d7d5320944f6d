package dev.thaw.nbd;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** A server's exports by name; the empty name picks the default export (the first). Immutable. */
final class ExportTable {
  private final Map<String, Export> byName = new LinkedHashMap<>();

  ExportTable(List<Export> exports) {
    if (exports.isEmpty()) {
      throw new IllegalArgumentException("nothing to export");
    }
    for (Export e : exports) {
      if (e.name().isEmpty() || byName.putIfAbsent(e.name(), e) != null) {
        throw new IllegalArgumentException("two exports named '" + e.name() + "'");
      }
    }
  }

  /** The export of that name, the default one for "", or null. */
  Export find(String name) {
    return name.isEmpty() ? byName.values().iterator().next() : byName.get(name);
  }

  Collection<Export> all() {
    return byName.values();
  }

  List<String> names() {
    return new ArrayList<>(byName.keySet());
  }
}
