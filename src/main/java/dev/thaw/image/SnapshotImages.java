package dev.thaw.image;

import dev.thaw.fetch.FetchPipeline;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A snapshot opened to be served (mounted or exported): its manifest read and checked once, and
 * every image's index read and checked at once, each image bound to its {@link ImageReader}. An
 * image whose index cannot be read or is damaged is left out with a warning that names it, so that
 * it is named when the snapshot is opened, not when the image is first read, and the snapshot's
 * other images stay usable. Immutable and thread-safe.
 */
public final class SnapshotImages {
  private final Snapshot snapshot;
  private final Map<String, ImageReader> readers;
  private final List<String> warnings;

  private SnapshotImages(
      Snapshot snapshot, Map<String, ImageReader> readers, List<String> warnings) {
    this.snapshot = snapshot;
    this.readers = Collections.unmodifiableMap(readers);
    this.warnings = List.copyOf(warnings);
  }

  /** Opens every image of {@code snapshot} through {@code pipeline}, read through {@code cache}. */
  public static SnapshotImages open(
      Snapshot snapshot, FetchPipeline pipeline, ChunkCache cache, ImageReader.Settings settings) {
    List<String> warnings = new ArrayList<>();
    for (String w : snapshot.manifest().warnings()) {
      warnings.add("snapshot " + snapshot.path() + ": " + w);
    }
    Map<String, ImageReader> readers = new LinkedHashMap<>();
    for (String archive : snapshot.images()) {
      try {
        readers.put(
            archive, new ImageReader(snapshot.openImage(archive, pipeline), cache, settings));
      } catch (IOException e) {
        warnings.add(archive + " of " + snapshot.path() + " is left out: " + e.getMessage());
      }
    }
    return new SnapshotImages(snapshot, readers, warnings);
  }

  public Snapshot snapshot() {
    return snapshot;
  }

  /** The readers of the images that opened, by archive name, in the manifest's order. */
  public Map<String, ImageReader> readers() {
    return readers;
  }

  /** What was left out and why: manifest entries, images whose index is damaged. */
  public List<String> warnings() {
    return warnings;
  }
}
