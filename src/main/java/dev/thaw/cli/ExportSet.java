package dev.thaw.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.thaw.crypto.CryptConfig;
import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.PipelineStats;
import dev.thaw.format.FixedIndex;
import dev.thaw.image.ChunkCache;
import dev.thaw.image.Image;
import dev.thaw.image.ImageReader;
import dev.thaw.image.Snapshot;
import dev.thaw.nbd.Export;
import dev.thaw.nbd.Exports;
import dev.thaw.nbd.NbdServer;
import dev.thaw.restore.LiveRestore;
import dev.thaw.restore.Restorer;
import dev.thaw.store.SnapshotPath;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What {@code thaw serve} exports: a snapshot's images (or casync images opened beforehand),
 * each read through an {@link ImageReader} over one shared {@link ChunkCache}, and writable
 * through a {@link LiveRestore} where a target is given; plus the status document. The wiring is
 * the same as a mount's. Not thread-safe to open and close; {@link #status} may be called from
 * any thread.
 */
final class ExportSet implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final String store;
  private final SnapshotPath snapshot;
  private final FetchPipeline pipeline;
  private final ChunkCache cache;
  private final Map<String, ImageReader> readers = new LinkedHashMap<>();
  private final Map<String, LiveRestore> lives = new LinkedHashMap<>();
  private final List<Export> exports = new ArrayList<>();

  private ExportSet(String store, SnapshotPath snapshot, FetchPipeline pipeline, long cacheBytes) {
    this.store = store;
    this.snapshot = snapshot;
    this.pipeline = pipeline;
    // cached, held and in-flight chunks together stay within the cache size
    long inFlight = (long) pipeline.maxChunksInMemory() * FixedIndex.DEFAULT_CHUNK_SIZE;
    this.cache = new ChunkCache(Math.max(cacheBytes / 2, cacheBytes - inFlight));
  }

  /**
   * Opens every image of {@code snapshot}; with {@code targets}, each image that has a target is
   * writable (live restore or overlay) and must exist in the snapshot.
   */
  static ExportSet ofSnapshot(FetchPipeline pipeline, CryptConfig key, SnapshotPath snapshot, ReadOptions read,
      WritableOptions.Targets targets) throws IOException {
    Snapshot s = Snapshot.open(pipeline.store(), snapshot, key);
    ExportSet set = new ExportSet(pipeline.store().describe(), snapshot, pipeline, read.cacheBytes());
    try {
      for (String archive : s.images()) {
        set.add(s.openImage(archive, pipeline), read, targets == null ? null : targets.targetFor(archive),
            targets == null ? null : targets.live());
      }
      if (targets != null) {
        for (String a : targets.pairs().keySet()) {
          if (!set.lives.containsKey(a)) {
            throw new IOException("snapshot " + snapshot + " has no image archive '" + a + "' (it has: "
                + String.join(", ", s.images()) + ")");
          }
        }
        if (set.lives.isEmpty()) {
          throw new IOException("no image of " + snapshot + " has a target");
        }
      }
    } catch (IOException | RuntimeException e) {
      set.close();
      throw e;
    }
    return set;
  }

  /** Exports images opened beforehand (casync indexes), read-only. */
  static ExportSet ofImages(List<Image> images, FetchPipeline pipeline, ReadOptions read) throws IOException {
    ExportSet set = new ExportSet(pipeline.store().describe(), null, pipeline, read.cacheBytes());
    for (Image i : images) {
      set.add(i, read, null, null);
    }
    return set;
  }

  private void add(Image image, ReadOptions read, Path target, LiveRestore.Options live) throws IOException {
    if (readers.containsKey(image.name())) {
      throw new IllegalArgumentException("two images named " + image.name());
    }
    ImageReader r = new ImageReader(image, cache, read.readAhead, read.readAheadBytes(), read.timeout());
    readers.put(image.name(), r);
    if (target == null) {
      exports.add(Exports.readOnly(r));
      return;
    }
    LiveRestore l = LiveRestore.open(r, target, Restorer.defaultStateFile(target), live);
    lives.put(image.name(), l);
    exports.add(Exports.writable(r, l, (live.background() ? "live restore into " : "overlay in ") + target));
  }

  List<Export> exports() {
    return exports;
  }

  /** Starts the background restores (once the server listens). */
  void startBackground() {
    lives.values().forEach(LiveRestore::start);
  }

  /**
   * The status document: the server, the cache, the pipeline and each image (with its restore),
   * in the shape of a mount's {@code .thaw/status}.
   */
  byte[] status(NbdServer.Stats server, List<String> uris) {
    ObjectNode root = JSON.createObjectNode();
    root.put("store", store);
    if (snapshot != null) {
      root.put("snapshot", snapshot.toString());
    }
    ObjectNode s = root.putObject("server");
    s.put("pid", ProcessHandle.current().pid());
    uris.forEach(s.putArray("uris")::add);
    s.put("connections", server.connections());
    s.put("connections_total", server.connectionsTotal());
    s.put("requests", server.requests());
    s.put("bytes_read", server.bytesRead());
    s.put("bytes_written", server.bytesWritten());
    s.put("errors", server.errors());
    PipelineStats ps = pipeline.stats();
    ObjectNode c = root.putObject("cache");
    c.put("bytes", cache.bytes());
    c.put("max_bytes", cache.maxBytes());
    c.put("chunks", cache.size());
    c.put("read_ahead_reserved_bytes", cache.reserved());
    ObjectNode p = root.putObject("pipeline");
    p.put("fetches_in_flight", ps.inFlight());
    p.put("queued", ps.queued());
    p.put("chunks_fetched", ps.fetched());
    p.put("bytes_fetched", ps.bytesFetched());
    p.put("fetch_latency_p50_ms", ps.latencyP50Micros() / 1000.0);
    p.put("fetch_latency_p99_ms", ps.latencyP99Micros() / 1000.0);
    p.put("retries", ps.retries());
    p.put("errors", ps.errors());
    ArrayNode list = root.putArray("images");
    readers.forEach((name, r) -> {
      ImageReader.Stats st = r.stats();
      ObjectNode o = list.addObject();
      o.put("path", name);
      o.put("size", r.image().size());
      o.put("chunks_total", r.image().chunkCount());
      o.put("chunks_cached", r.cachedChunks());
      o.put("chunks_fetched", st.fetched());
      o.put("bytes_fetched", st.bytesFetched());
      long lookups = st.cacheHits() + st.cacheMisses() + st.readAheadHits();
      o.put("cache_hit_rate", lookups == 0 ? 0 : (double) (st.cacheHits() + st.readAheadHits()) / lookups);
      o.put("reads", st.reads());
      o.put("bytes_read", st.bytesRead());
      o.put("read_latency_p50_ms", st.readP50Micros() / 1000.0);
      o.put("read_latency_p99_ms", st.readP99Micros() / 1000.0);
      o.put("read_ahead_hits", st.readAheadHits());
      o.put("read_ahead_issued", st.readAheadIssued());
      o.put("errors", st.errors());
      LiveRestore live = lives.get(name);
      if (live != null) {
        restoreStatus(o.putObject("restore"), live.progress());
      }
    });
    try {
      return (JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n").getBytes(StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private static void restoreStatus(ObjectNode lr, LiveRestore.Progress lp) {
    lr.put("mode", lp.background() ? "live-restore" : "overlay");
    lr.put("state", lp.complete() ? "complete" : lp.error() != null ? "stopped" : lp.background() ? "running" : "overlay");
    lr.put("chunks_present", lp.present());
    lr.put("chunks_total", lp.chunks());
    lr.put("percent", Math.round(1000.0 * lp.bytesPresent() / Math.max(1, lp.size())) / 10.0);
    lr.put("rate_bytes_per_s", Math.round(lp.rate()));
    lr.put("elapsed_s", Math.round(lp.backgroundNanos() / 1e7) / 100.0);
    if (lp.background() && !lp.complete() && lp.rate() > 0) {
      lr.put("eta_s", Math.round((lp.size() - lp.bytesPresent()) / lp.rate()));
    }
    lr.put("guest_writes", lp.guestWrites());
    if (lp.error() != null) {
      lr.put("error", lp.error());
    }
  }

  /** Stops the background restores and makes every target durable. */
  @Override
  public void close() throws IOException {
    IOException first = null;
    for (LiveRestore l : lives.values()) {
      try {
        l.close();
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    lives.clear();
    if (first != null) {
      throw first;
    }
  }
}
