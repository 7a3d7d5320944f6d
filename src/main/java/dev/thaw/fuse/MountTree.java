package dev.thaw.fuse;

import dev.thaw.image.ImageReader;
import dev.thaw.restore.LiveRestore;
import dev.thaw.volume.ImageVolumes;
import dev.thaw.volume.Volume;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The file tree of a mount, independent of FUSE: what a path names. Two shapes: a whole datastore
 * ({@link DatastoreTree}: {@code TYPE/ID/TIME/ARCHIVE}) and a flat set of images at the root
 * ({@link ImagesTree}: one snapshot's images, or images opened beforehand such as a casync image).
 * Both have {@code .thaw/status} at the root. Thread-safe.
 */
sealed interface MountTree permits DatastoreTree, ImagesTree {
  String STATUS_DIR = ".thaw";
  String STATUS_FILE = "status";

  /** What a path names. */
  sealed interface Node permits Dir, ImageFile, VolumeFile, LockedFile, StatusFile {}

  /** A directory and its entry names. */
  record Dir(List<String> entries, long mtime) implements Node {}

  /**
   * An image, its reader, and its live restore when it is writable (else null).
   *
   * @param path the name the status document gives it
   */
  record ImageFile(String path, ImageReader reader, LiveRestore live, long mtime) implements Node {
    long size() {
      return reader.image().size();
    }
  }

  /**
   * A partition or logical volume of a read-only image, as a read-only file of its own beside the
   * image: reads are offset reads of the image through its reader.
   */
  record VolumeFile(Volume volume, ImageReader reader, long mtime) implements Node {}

  /** An image of a snapshot that needs a key the mount was not given; {@code reason} says which. */
  record LockedFile(long size, long mtime, String reason) implements Node {}

  /** {@code .thaw/status}. */
  record StatusFile() implements Node {}

  /**
   * The entries of a directory of images: each image's name followed by the names of its exposed
   * volumes (read-only images only: a writable image's table and filesystems change under the
   * guest's writes), each image scanned now if it was not yet. A volume whose name another entry
   * has is left out.
   */
  static List<String> imagesAndVolumes(
      Map<String, ImageReader> readers, Map<String, LiveRestore> lives, ImageVolumes volumes) {
    List<String> out = new ArrayList<>();
    Set<String> names = new HashSet<>(readers.keySet());
    readers.forEach(
        (name, r) -> {
          out.add(name);
          if (!lives.containsKey(name)) {
            for (Volume v : volumes.exposed(r.image().name(), r)) {
              if (names.add(v.name())) {
                out.add(v.name());
              }
            }
          }
        });
    return out;
  }

  /**
   * What {@code name} names in a directory of images: an image, or an exposed volume of a read-only
   * image (only the image whose name {@code name} extends is scanned).
   *
   * @param path the image's name in the status document, given the image's name
   */
  static Optional<Node> imageOrVolume(
      String name,
      Map<String, ImageReader> readers,
      Map<String, LiveRestore> lives,
      ImageVolumes volumes,
      java.util.function.UnaryOperator<String> path,
      long mtime) {
    ImageReader r = readers.get(name);
    if (r != null) {
      return Optional.of(new ImageFile(path.apply(name), r, lives.get(name), mtime));
    }
    for (Map.Entry<String, ImageReader> e : readers.entrySet()) {
      String image = e.getKey();
      if (name.startsWith(image + ".") && !lives.containsKey(image)) {
        ImageReader ir = e.getValue();
        for (Volume v : volumes.exposed(ir.image().name(), ir)) {
          if (v.name().equals(name)) {
            return Optional.of(new VolumeFile(v, ir, mtime));
          }
        }
      }
    }
    return Optional.empty();
  }

  /** When the mount was made, epoch seconds (the status directory's time). */
  long mountTime();

  /**
   * What {@code parts} (the path below the root, never starting with {@code .thaw}) names; the
   * root's entries without {@code .thaw}.
   */
  Optional<Node> resolveBelowRoot(List<String> parts) throws IOException;

  /** Resolves a FUSE path ("/", "/a.img", "/vm/100/T/a.img"); empty when nothing is there. */
  default Optional<Node> resolve(String path) throws IOException {
    List<String> parts = new ArrayList<>();
    for (String p : path.split("/")) {
      if (!p.isEmpty()) {
        parts.add(p);
      }
    }
    if (!parts.isEmpty() && parts.get(0).equals(STATUS_DIR)) {
      if (parts.size() == 1) {
        return Optional.of(new Dir(List.of(STATUS_FILE), mountTime()));
      }
      return parts.size() == 2 && parts.get(1).equals(STATUS_FILE)
          ? Optional.of(new StatusFile())
          : Optional.empty();
    }
    Optional<Node> n = resolveBelowRoot(parts);
    if (parts.isEmpty() && n.isPresent() && n.get() instanceof Dir root) {
      List<String> entries = new ArrayList<>(root.entries());
      entries.add(STATUS_DIR);
      return Optional.of(new Dir(entries, root.mtime()));
    }
    return n;
  }
}
