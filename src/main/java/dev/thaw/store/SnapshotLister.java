package dev.thaw.store;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Walks a datastore's directory tree ({@code [ns/NS/]TYPE/ID/TIME}) through a directory-listing
 * function, so that every store that can list directories finds snapshots the same way.
 */
final class SnapshotLister {
  /** One directory entry. */
  record Entry(String name, boolean directory) {}

  /** Lists a directory given as a '/'-separated path relative to the root ("" for the root). */
  interface DirectoryReader {
    List<Entry> list(String relDir) throws IOException;
  }

  private static final int MAX_NAMESPACE_DEPTH = 7;

  private SnapshotLister() {}

  static List<SnapshotPath> list(DirectoryReader reader) throws IOException {
    List<SnapshotPath> out = new ArrayList<>();
    walk(reader, "", new ArrayList<>(), out);
    Collections.sort(out);
    return out;
  }

  private static void walk(DirectoryReader reader, String prefix, List<String> ns,
      List<SnapshotPath> out) throws IOException {
    for (Entry e : reader.list(prefix)) {
      if (!e.directory()) {
        continue;
      }
      if (e.name().equals("ns") && ns.size() < MAX_NAMESPACE_DEPTH) {
        for (Entry n : reader.list(prefix + "ns/")) {
          if (n.directory() && SnapshotPath.isName(n.name())) {
            List<String> sub = new ArrayList<>(ns);
            sub.add(n.name());
            walk(reader, prefix + "ns/" + n.name() + "/", sub, out);
          }
        }
      } else if (SnapshotPath.TYPES.contains(e.name())) {
        String typeDir = prefix + e.name() + "/";
        for (Entry id : reader.list(typeDir)) {
          if (!id.directory() || !SnapshotPath.isName(id.name())) {
            continue;
          }
          for (Entry t : reader.list(typeDir + id.name() + "/")) {
            if (t.directory() && SnapshotPath.isTime(t.name())) {
              out.add(new SnapshotPath(ns, e.name(), id.name(), SnapshotPath.parseTime(t.name(), t.name())));
            }
          }
        }
      }
    }
  }
}
