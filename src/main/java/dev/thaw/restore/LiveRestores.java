package dev.thaw.restore;

import dev.thaw.image.ImageReader;
import dev.thaw.image.SnapshotImages;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The writable images of a mount or export of one snapshot: a {@link LiveRestore} (a live restore,
 * or an overlay) for every image that has a target. All targets are opened (and locked) when this
 * opens, so that a bad or busy target fails before anything is served; background restores begin
 * with {@link #start()}. Thread-safe.
 */
public final class LiveRestores implements AutoCloseable {
  /**
   * Where each image's chunks move.
   *
   * @param dir the target of an archive is {@code dir/ARCHIVE} unless {@code pairs} names one; null
   *     when only {@code pairs} are given
   * @param pairs archive name to target path (a file or block device)
   * @param live a live restore (background restore) or an overlay, and its limits
   */
  public record Targets(Path dir, Map<String, Path> pairs, LiveRestore.Options live) {
    public Targets {
      pairs = Map.copyOf(pairs);
    }

    /** The target of {@code archive}, or null if it stays read-only. */
    Path targetFor(String archive) {
      Path p = pairs.get(archive);
      return p != null ? p : dir != null ? dir.resolve(archive) : null;
    }
  }

  private final Map<String, LiveRestore> lives;

  private LiveRestores(Map<String, LiveRestore> lives) {
    this.lives = Collections.unmodifiableMap(lives);
  }

  /**
   * Opens the live restore of every image of {@code images} that {@code targets} gives a target
   * (its state file where {@link Restorer#defaultStateFile} puts it).
   *
   * @throws IOException when a target cannot be used or is in use, when an archive named in {@code
   *     targets} is not in the snapshot, or when no image has a target
   */
  public static LiveRestores open(SnapshotImages images, Targets targets) throws IOException {
    for (String a : targets.pairs().keySet()) {
      if (!images.readers().containsKey(a)) {
        throw new IOException(
            "snapshot "
                + images.snapshot().path()
                + " has no image archive '"
                + a
                + "' (it has: "
                + String.join(", ", images.readers().keySet())
                + ")");
      }
    }
    Map<String, LiveRestore> lives = new LinkedHashMap<>();
    try {
      for (Map.Entry<String, ImageReader> e : images.readers().entrySet()) {
        Path target = targets.targetFor(e.getKey());
        if (target != null) {
          lives.put(
              e.getKey(),
              LiveRestore.open(
                  e.getValue(), target, Restorer.defaultStateFile(target), targets.live()));
        }
      }
      if (lives.isEmpty()) {
        throw new IOException("no image of " + images.snapshot().path() + " has a target");
      }
    } catch (IOException | RuntimeException e) {
      closeAll(lives);
      throw e;
    }
    return new LiveRestores(lives);
  }

  /** The live restore of {@code archive}, or null when it is read-only. */
  public LiveRestore get(String archive) {
    return lives.get(archive);
  }

  /** Every live restore, by archive name. */
  public Map<String, LiveRestore> all() {
    return lives;
  }

  /**
   * Starts the background restores (once the front end answers, so the first read does not wait).
   */
  public void start() {
    lives.values().forEach(LiveRestore::start);
  }

  /** Stops the background restores and makes every target and state file durable. */
  @Override
  public void close() throws IOException {
    closeAll(lives);
  }

  private static void closeAll(Map<String, LiveRestore> lives) throws IOException {
    IOException first = null;
    for (LiveRestore l : lives.values()) {
      try {
        l.close();
      } catch (IOException e) {
        if (first == null) {
          first = e;
        } else {
          first.addSuppressed(e);
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }
}
