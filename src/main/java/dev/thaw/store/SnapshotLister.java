package dev.thaw.store;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Walks a datastore's directory tree ({@code [ns/NS/]TYPE/ID/TIME}) through a directory-listing
 * function, so that every store that can list directories finds snapshots the same way. A snapshot
 * directory without its manifest ({@code index.json.blob}) is a backup in progress or an aborted
 * one; like Proxmox Backup Server, and like the S3 store (which lists manifests), the lister leaves
 * it out.
 */
final class SnapshotLister {
  /** One directory entry. */
  record Entry(String name, boolean directory) {}

  /** Lists a directory given as a '/'-separated path relative to the root ("" for the root). */
  interface DirectoryReader {
    List<Entry> list(String relDir) throws IOException;
  }

  static final String MANIFEST = "index.json.blob";
  private static final int MAX_NAMESPACE_DEPTH = 7;

  private SnapshotLister() {}

  /** Every finished snapshot, sorted; snapshot directories are checked one at a time. */
  static List<SnapshotPath> list(DirectoryReader reader) throws IOException {
    return list(reader, 1);
  }

  /**
   * Every finished snapshot, sorted; up to {@code parallel} snapshot directories are listed at once
   * to find their manifests (a remote store pays a round trip for each).
   */
  static List<SnapshotPath> list(DirectoryReader reader, int parallel) throws IOException {
    List<SnapshotPath> candidates = new ArrayList<>();
    walk(reader, "", new ArrayList<>(), candidates);
    List<SnapshotPath> out = new ArrayList<>();
    if (parallel <= 1 || candidates.size() <= 1) {
      for (SnapshotPath s : candidates) {
        if (finished(reader, s)) {
          out.add(s);
        }
      }
    } else {
      ExecutorService pool =
          Executors.newFixedThreadPool(
              Math.min(parallel, candidates.size()),
              r -> {
                Thread t = new Thread(r, "thaw-list");
                t.setDaemon(true);
                return t;
              });
      try {
        List<Future<Boolean>> checks = new ArrayList<>();
        for (SnapshotPath s : candidates) {
          checks.add(pool.submit(() -> finished(reader, s)));
        }
        for (int i = 0; i < candidates.size(); i++) {
          if (checks.get(i).get()) {
            out.add(candidates.get(i));
          }
        }
      } catch (ExecutionException e) {
        throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("snapshot listing interrupted");
      } finally {
        pool.shutdownNow();
      }
    }
    Collections.sort(out);
    return out;
  }

  private static boolean finished(DirectoryReader reader, SnapshotPath s) throws IOException {
    for (Entry e : reader.list(s + "/")) {
      if (!e.directory() && e.name().equals(MANIFEST)) {
        return true;
      }
    }
    return false;
  }

  private static void walk(
      DirectoryReader reader, String prefix, List<String> ns, List<SnapshotPath> out)
      throws IOException {
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
              out.add(
                  new SnapshotPath(
                      ns, e.name(), id.name(), SnapshotPath.parseTime(t.name(), t.name())));
            }
          }
        }
      }
    }
  }
}
