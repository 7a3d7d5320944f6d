package dev.thaw.fuse;

import dev.thaw.image.ImageReader;
import dev.thaw.restore.LiveRestore;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The file tree of a mount, independent of FUSE: what a path names. Two shapes: a whole
 * datastore ({@link DatastoreTree}: {@code TYPE/ID/TIME/ARCHIVE}) and a flat set of images at the
 * root ({@link ImagesTree}: one snapshot's images, or images opened beforehand such as a casync
 * image). Both have {@code .thaw/status} at the root. Thread-safe.
 */
sealed interface MountTree permits DatastoreTree, ImagesTree {
  String STATUS_DIR = ".thaw";
  String STATUS_FILE = "status";

  /** What a path names. */
  sealed interface Node permits Dir, ImageFile, LockedFile, StatusFile {}

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

  /** An image of a snapshot that needs a key the mount was not given; {@code reason} says which. */
  record LockedFile(long size, long mtime, String reason) implements Node {}

  /** {@code .thaw/status}. */
  record StatusFile() implements Node {}

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
          ? Optional.of(new StatusFile()) : Optional.empty();
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
