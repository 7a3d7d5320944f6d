package dev.thaw.fuse;

import dev.thaw.image.Catalog;
import dev.thaw.image.ImageReader;
import dev.thaw.image.Snapshot;
import dev.thaw.store.SnapshotPath;
import dev.thaw.volume.ImageVolumes;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A whole datastore as {@code TYPE/ID/TIME/ARCHIVE}, listed lazily from a {@link Catalog}: a
 * snapshot is opened (its indexes read and checked) when its directory is first looked at. Beside
 * each image, its partitions and logical volumes as files. Snapshots in namespaces are not shown.
 * Thread-safe.
 */
record DatastoreTree(Catalog catalog, long mountTime, ImageVolumes volumes) implements MountTree {
  @Override
  public Optional<Node> resolveBelowRoot(List<String> parts) throws IOException {
    if (parts.size() > 4) {
      return Optional.empty();
    }
    if (parts.size() >= 3) {
      SnapshotPath s;
      try {
        s = SnapshotPath.parse(parts.get(0) + "/" + parts.get(1) + "/" + parts.get(2));
      } catch (IllegalArgumentException e) {
        return Optional.empty();
      }
      if (!catalog.snapshots().contains(s)) {
        return Optional.empty();
      }
      return inSnapshot(s, parts.subList(3, parts.size()));
    }
    LinkedHashSet<String> names = new LinkedHashSet<>();
    boolean exists = parts.isEmpty();
    for (SnapshotPath s : catalog.snapshots()) {
      if (!s.namespace().isEmpty()) {
        continue; // namespaces are not shown in the tree yet
      }
      List<String> sp = List.of(s.type(), s.id(), s.timeString());
      if (sp.subList(0, parts.size()).equals(parts)) {
        exists = true;
        names.add(sp.get(parts.size()));
      }
    }
    return exists ? Optional.of(new Dir(new ArrayList<>(names), mountTime)) : Optional.empty();
  }

  private Optional<Node> inSnapshot(SnapshotPath s, List<String> parts) throws IOException {
    Catalog.Entry e = catalog.entry(s);
    long mtime = e.manifest().backupTime();
    if (e instanceof Catalog.Opened o) {
      Map<String, ImageReader> readers = o.images().readers();
      if (parts.isEmpty()) {
        return Optional.of(new Dir(MountTree.imagesAndVolumes(readers, Map.of(), volumes), mtime));
      }
      return parts.size() != 1
          ? Optional.empty()
          : MountTree.imageOrVolume(
              parts.get(0), readers, Map.of(), volumes, name -> s + "/" + name, mtime);
    }
    Catalog.Locked l = (Catalog.Locked) e;
    if (parts.isEmpty()) {
      return Optional.of(new Dir(Snapshot.images(l.manifest()), mtime));
    }
    return l.manifest()
        .file(parts.get(0) + Snapshot.FIXED_INDEX_SUFFIX)
        .map(f -> new LockedFile(f.size(), mtime, l.reason()));
  }
}
