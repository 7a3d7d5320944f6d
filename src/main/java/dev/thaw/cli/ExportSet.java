package dev.thaw.cli;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.image.ChunkCache;
import dev.thaw.image.Image;
import dev.thaw.image.ImageReader;
import dev.thaw.image.KeyPolicy;
import dev.thaw.image.Snapshot;
import dev.thaw.image.SnapshotImages;
import dev.thaw.nbd.Export;
import dev.thaw.nbd.Exports;
import dev.thaw.nbd.NbdServer;
import dev.thaw.restore.LiveRestore;
import dev.thaw.restore.LiveRestores;
import dev.thaw.restore.ServeStatus;
import dev.thaw.store.SnapshotPath;
import dev.thaw.volume.ImageVolumes;
import dev.thaw.volume.Volume;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What {@code thaw serve} exports, from the pieces a mount serves too: a snapshot's images ({@link
 * SnapshotImages}) or images opened beforehand, writable where {@link LiveRestores} has a target,
 * one export per image and one per partition or logical volume of each read-only image ({@link
 * ImageVolumes}, scanned when the set is opened); and its {@link ServeStatus}. Opened once, closed
 * once; {@link #status} may be called from any thread.
 */
final class ExportSet implements AutoCloseable {
  private final String store;
  private final SnapshotPath snapshot;
  private final FetchPipeline pipeline;
  private final ChunkCache cache;
  private final Map<String, ImageReader> readers;
  private final LiveRestores lives;
  private final List<Export> exports = new ArrayList<>();
  private final List<String> warnings;
  private final ImageVolumes volumes;

  private ExportSet(
      String store,
      SnapshotPath snapshot,
      FetchPipeline pipeline,
      ChunkCache cache,
      Map<String, ImageReader> readers,
      LiveRestores lives,
      List<String> warnings) {
    List<String> all = new ArrayList<>(warnings);
    this.volumes = new ImageVolumes(all::add);
    this.store = store;
    this.snapshot = snapshot;
    this.pipeline = pipeline;
    this.cache = cache;
    this.readers = readers;
    this.lives = lives;
    readers.forEach(
        (name, r) -> {
          LiveRestore live = lives == null ? null : lives.get(name);
          exports.add(
              live == null
                  ? Exports.readOnly(r)
                  : Exports.writable(
                      r,
                      live,
                      (live.progress().background() ? "live restore of " : "overlay of ") + name));
          if (live == null) { // a writable image's table and filesystems change under the client's
            // writes
            for (Volume v : volumes.exposed(r.image().name(), r)) {
              if (!readers.containsKey(v.name())) {
                exports.add(Exports.volume(r, v));
              }
            }
          }
        });
    this.warnings = List.copyOf(all);
  }

  /**
   * Opens every image of {@code snapshot} (a damaged index leaves its image out, see {@link
   * #warnings}); with {@code targets}, each image that has a target is writable (live restore or
   * overlay).
   */
  static ExportSet ofSnapshot(
      FetchPipeline pipeline,
      KeyPolicy key,
      SnapshotPath snapshot,
      long cacheBytes,
      ImageReader.Settings reads,
      LiveRestores.Targets targets)
      throws IOException {
    ChunkCache cache = ChunkCache.within(cacheBytes, pipeline);
    SnapshotImages images =
        SnapshotImages.open(Snapshot.open(pipeline.store(), snapshot, key), pipeline, cache, reads);
    if (images.readers().isEmpty()) {
      throw new IOException(
          "snapshot "
              + snapshot
              + " has no image that can be opened: "
              + String.join("; ", images.warnings()));
    }
    LiveRestores lives = targets == null ? null : LiveRestores.open(images, targets);
    return new ExportSet(
        pipeline.store().describe(),
        snapshot,
        pipeline,
        cache,
        images.readers(),
        lives,
        images.warnings());
  }

  /** Exports images opened beforehand (casync indexes), read-only. */
  static ExportSet ofImages(
      List<Image> images, FetchPipeline pipeline, long cacheBytes, ImageReader.Settings reads) {
    ChunkCache cache = ChunkCache.within(cacheBytes, pipeline);
    Map<String, ImageReader> readers = new LinkedHashMap<>();
    for (Image i : images) {
      if (readers.putIfAbsent(i.name(), new ImageReader(i, cache, reads)) != null) {
        throw new IllegalArgumentException("two images named " + i.name());
      }
    }
    return new ExportSet(
        pipeline.store().describe(), null, pipeline, cache, readers, null, List.of());
  }

  /**
   * What opening left out and why (images whose index is damaged, partition tables not trusted).
   */
  List<String> warnings() {
    return warnings;
  }

  List<Export> exports() {
    return exports;
  }

  /** Starts the background restores (once the server listens). */
  void startBackground() {
    if (lives != null) {
      lives.start();
    }
  }

  /** The status document: the server, the cache, the pipeline and each image (with its restore). */
  byte[] status(NbdServer.Stats server, List<String> uris) {
    return ServeStatus.of(
            store,
            snapshot == null ? null : snapshot.toString(),
            cache,
            pipeline.stats(),
            readers,
            lives == null ? Map.of() : lives.all(),
            volumes)
        .withServer(
            new ServeStatus.Server(
                ProcessHandle.current().pid(),
                uris,
                server.connections(),
                server.connectionsTotal(),
                server.requests(),
                server.bytesRead(),
                server.bytesWritten(),
                server.errors()))
        .toJson();
  }

  /** Stops the background restores and makes every target durable. */
  @Override
  public void close() throws IOException {
    if (lives != null) {
      lives.close();
    }
  }
}
