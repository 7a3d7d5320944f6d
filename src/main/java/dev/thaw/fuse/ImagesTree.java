package dev.thaw.fuse;

import dev.thaw.image.ImageReader;
import dev.thaw.restore.LiveRestore;
import dev.thaw.volume.ImageVolumes;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Images at the root of a mount by name: one snapshot's images (writable where a live restore or
 * overlay has a target), or images opened beforehand; beside each read-only image, its partitions
 * and logical volumes as files. Immutable and thread-safe.
 *
 * @param readers the images by name, in the order they are listed
 * @param lives the writable ones among them
 * @param mtime the images' time (the snapshot's backup time, or the mount time)
 * @param volumes where the read-only images' partitions and logical volumes are found; each is a
 *     file beside its image
 */
record ImagesTree(
    Map<String, ImageReader> readers,
    Map<String, LiveRestore> lives,
    long mtime,
    long mountTime,
    ImageVolumes volumes)
    implements MountTree {
  ImagesTree {
    if (readers.containsKey(STATUS_DIR)) {
      throw new IllegalArgumentException("an image may not be named " + STATUS_DIR);
    }
  }

  @Override
  public Optional<Node> resolveBelowRoot(List<String> parts) {
    if (parts.isEmpty()) {
      return Optional.of(new Dir(MountTree.imagesAndVolumes(readers, lives, volumes), mtime));
    }
    return parts.size() != 1
        ? Optional.empty()
        : MountTree.imageOrVolume(parts.get(0), readers, lives, volumes, name -> name, mtime);
  }
}
