package dev.thaw.volume;

import dev.thaw.image.ImageReader;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * The volumes of the images a front end serves (a mount, an NBD server, a command): each image's
 * {@link VolumeMap}, scanned through its {@link ImageReader} (the front end's cache, read-ahead and
 * verification) once, on first use, and kept. A table that cannot be trusted gives a map without
 * volumes and a warning (to the consumer given, once per image); an image whose first chunks cannot
 * be fetched gives the same, and is scanned again on a use 30 s later. Neither fails the caller.
 * Thread-safe: concurrent first uses of one image scan it once.
 */
public final class ImageVolumes {
  private final Consumer<String> warnings;

  /** By reader identity: one scan per image a front end serves. */
  private final Map<ImageReader, Scan> maps = new ConcurrentHashMap<>();

  private static final long RETRY_NANOS = 30_000_000_000L;

  /** A scan's result; {@code failed}: the image could not be read (then retried after a while). */
  private record Scan(VolumeMap map, boolean failed, long at) {}

  /**
   * @param warnings receives what a scan could not trust or read, once per image
   */
  public ImageVolumes(Consumer<String> warnings) {
    this.warnings = warnings;
  }

  /**
   * The volumes of the image {@code reader} reads, scanned now if they were not yet.
   *
   * @param name the image's file name, the prefix of its volumes' names
   */
  public VolumeMap map(String name, ImageReader reader) {
    Scan first = maps.computeIfAbsent(reader, r -> scan(name, r));
    if (first.failed() && System.nanoTime() - first.at() > RETRY_NANOS) {
      // a scan another thread made meanwhile is newer than the failure
      return maps.compute(
              reader, (r, now) -> now != null && now.at() != first.at() ? now : scan(name, r))
          .map();
    }
    return first.map();
  }

  /** The volumes of {@code reader}'s image if it was scanned, else null (nothing is fetched). */
  public VolumeMap scanned(ImageReader reader) {
    Scan s = maps.get(reader);
    return s == null ? null : s.map();
  }

  private Scan scan(String name, ImageReader reader) {
    VolumeMap map;
    boolean failed = false;
    try (ImageReader.Handle h = reader.openWithoutReadAhead()) {
      map = VolumeMap.scan(name, ByteSource.of(h, reader.image().size()));
    } catch (IOException | RuntimeException e) {
      failed = true;
      map =
          VolumeMap.unreadable(
              "volumes of "
                  + name
                  + " not shown: its partition table could not be read: "
                  + e.getMessage());
    }
    map.warnings().forEach(warnings);
    return new Scan(map, failed, System.nanoTime());
  }

  /** The exposed volumes of {@code reader}'s image, scanned now if they were not yet. */
  public List<Volume> exposed(String name, ImageReader reader) {
    return map(name, reader).exposed();
  }
}
