package dev.thaw.restore;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import dev.thaw.fetch.PipelineStats;
import dev.thaw.image.ChunkCache;
import dev.thaw.image.ImageReader;
import dev.thaw.volume.ImageVolumes;
import dev.thaw.volume.VolumeReport;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Where a mount or export stands: its cache, its fetch pipeline, and per image its reads and, for a
 * writable image, its live restore. One document, written by the front end ({@code
 * MOUNTPOINT/.thaw/status}) and read by {@code thaw status}, as JSON with snake_case names; absent
 * parts (no snapshot, no restore) are left out. Immutable.
 *
 * @param snapshot the snapshot served, or null for a whole datastore or images opened beforehand
 * @param server the NBD server's own figures, or null for a mount
 */
public record ServeStatus(
    String store,
    String snapshot,
    Server server,
    Cache cache,
    Pipeline pipeline,
    List<ImageStatus> images) {
  private static final ObjectMapper JSON =
      new ObjectMapper()
          .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
          .setSerializationInclusion(JsonInclude.Include.NON_NULL)
          .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

  public ServeStatus {
    images = List.copyOf(images);
  }

  /**
   * An NBD server: its process (a status file outlives a killed server: the pid tells), where it
   * listens, and its traffic.
   */
  public record Server(
      long pid,
      List<String> uris,
      long connections,
      long connectionsTotal,
      long requests,
      long bytesRead,
      long bytesWritten,
      long errors) {
    public Server {
      uris = List.copyOf(uris);
    }
  }

  /** The shared chunk cache. */
  public record Cache(long bytes, long maxBytes, long chunks, long readAheadReservedBytes) {}

  /** The fetch pipeline every image shares. */
  public record Pipeline(
      long fetchesInFlight,
      long queued,
      long chunksFetched,
      long bytesFetched,
      double fetchLatencyP50Ms,
      double fetchLatencyP99Ms,
      long retries,
      long errors) {}

  /**
   * One image's reads; {@code restore} for a writable image, else null; {@code volumes} its
   * partition table and volumes for a read-only image (as {@code thaw partitions --output json}
   * shows them), else null.
   */
  public record ImageStatus(
      String path,
      long size,
      long chunksTotal,
      long chunksCached,
      long chunksFetched,
      long bytesFetched,
      double cacheHitRate,
      long reads,
      long bytesRead,
      double readLatencyP50Ms,
      double readLatencyP99Ms,
      long readAheadHits,
      long readAheadIssued,
      long errors,
      Restore restore,
      VolumeReport volumes) {}

  /**
   * A writable image's move into its target.
   *
   * @param mode {@code live-restore} or {@code overlay}
   * @param state {@code running}, {@code complete}, {@code stopped} (see {@code error}) or {@code
   *     overlay}
   * @param etaS seconds left at the present rate, or null when unknown or done
   */
  public record Restore(
      String mode,
      String state,
      long chunksPresent,
      long chunksTotal,
      double percent,
      long rateBytesPerS,
      double elapsedS,
      Long etaS,
      long guestWrites,
      String error) {}

  /**
   * The status now.
   *
   * @param readers the images served, by the path the status names them with
   * @param lives the writable ones among them, by the same path
   * @param volumes the volumes of the read-only images (scanned now where they were not yet)
   */
  public static ServeStatus of(
      String store,
      String snapshot,
      ChunkCache cache,
      PipelineStats ps,
      Map<String, ImageReader> readers,
      Map<String, LiveRestore> lives,
      ImageVolumes volumes) {
    Cache c = new Cache(cache.bytes(), cache.maxBytes(), cache.size(), cache.reserved());
    Pipeline p =
        new Pipeline(
            ps.inFlight(),
            ps.queued(),
            ps.fetched(),
            ps.bytesFetched(),
            ps.latencyP50Micros() / 1000.0,
            ps.latencyP99Micros() / 1000.0,
            ps.retries(),
            ps.errors());
    List<ImageStatus> images = new ArrayList<>();
    readers.forEach(
        (path, r) -> {
          ImageReader.Stats st = r.stats();
          long lookups = st.cacheHits() + st.cacheMisses() + st.readAheadHits();
          LiveRestore live = lives.get(path);
          images.add(
              new ImageStatus(
                  path,
                  r.image().size(),
                  r.image().chunkCount(),
                  r.cachedChunks(),
                  st.fetched(),
                  st.bytesFetched(),
                  lookups == 0 ? 0 : (double) (st.cacheHits() + st.readAheadHits()) / lookups,
                  st.reads(),
                  st.bytesRead(),
                  st.readP50Micros() / 1000.0,
                  st.readP99Micros() / 1000.0,
                  st.readAheadHits(),
                  st.readAheadIssued(),
                  st.errors(),
                  live == null ? null : restore(live.progress()),
                  live != null
                      ? null
                      : VolumeReport.of(
                          r.image().name(), r.image().size(), volumes.map(r.image().name(), r))));
        });
    return new ServeStatus(store, snapshot, null, c, p, images);
  }

  /** This status with an NBD server's figures. */
  public ServeStatus withServer(Server server) {
    return new ServeStatus(store, snapshot, server, cache, pipeline, images);
  }

  private static Restore restore(LiveRestore.Progress lp) {
    String state =
        lp.complete()
            ? "complete"
            : lp.error() != null ? "stopped" : lp.background() ? "running" : "overlay";
    long left = lp.size() - lp.bytesPresent();
    Long eta =
        lp.background() && !lp.complete() && lp.rate() > 0 ? Math.round(left / lp.rate()) : null;
    return new Restore(
        lp.background() ? "live-restore" : "overlay",
        state,
        lp.present(),
        lp.chunks(),
        Math.round(1000.0 * lp.bytesPresent() / Math.max(1, lp.size())) / 10.0,
        Math.round(lp.rate()),
        Math.round(lp.backgroundNanos() / 1e7) / 100.0,
        eta,
        lp.guestWrites(),
        lp.error());
  }

  /** The document, pretty-printed, with a final newline. */
  public byte[] toJson() {
    return (json(this) + "\n").getBytes(StandardCharsets.UTF_8);
  }

  /**
   * A value as the status document writes it (snake_case names, absent parts left out),
   * pretty-printed: one JSON style for every document thaw prints.
   */
  public static String json(Object value) {
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(value);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Reads a document {@link #toJson} wrote. */
  public static ServeStatus parse(byte[] json) throws IOException {
    return JSON.readValue(json, ServeStatus.class);
  }
}
