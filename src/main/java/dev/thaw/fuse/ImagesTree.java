package dev.thaw.fuse;

import dev.thaw.image.ImageReader;
import dev.thaw.restore.LiveRestore;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Images at the root of a mount by name: one snapshot's images (writable where a live restore
 * or overlay has a target), or images opened beforehand. Immutable and thread-safe.
 *
 * @param readers the images by name, in the order they are listed
 * @param lives the writable ones among them
 * @param mtime the images' time (the snapshot's backup time, or the mount time)
 */
record ImagesTree(Map<String, ImageReader> readers, Map<String, LiveRestore> lives, long mtime,
    long mountTime) implements MountTree {
  ImagesTree {
    if (readers.containsKey(STATUS_DIR)) {
      throw new IllegalArgumentException("an image may not be named " + STATUS_DIR);
    }
  }

  @Override
  public Optional<Node> resolveBelowRoot(List<String> parts) {
    if (parts.isEmpty()) {
      return Optional.of(new Dir(List.copyOf(readers.keySet()), mtime));
    }
    ImageReader r = parts.size() == 1 ? readers.get(parts.get(0)) : null;
    return r == null ? Optional.empty()
        : Optional.of(new ImageFile(parts.get(0), r, lives.get(parts.get(0)), mtime));
  }
}
