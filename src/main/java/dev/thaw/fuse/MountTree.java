package dev.thaw.fuse;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.PipelineStats;
import dev.thaw.format.Manifest;
import dev.thaw.image.ChunkCache;
import dev.thaw.image.Image;
import dev.thaw.image.ImageReader;
import dev.thaw.image.KeyPolicy;
import dev.thaw.image.Snapshot;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.SnapshotPath;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.nio.file.Path;
import dev.thaw.restore.LiveRestore;
import dev.thaw.restore.Restorer;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The file tree of a mount, independent of FUSE: with a fixed snapshot, its images at the root;
 * with images opened beforehand (casync indexes, no snapshot), those images at the root;
 * otherwise every snapshot as {@code TYPE/ID/TIME/ARCHIVE}, listed lazily (the snapshot list is
 * re-read at most every 30 s, a manifest when its directory is first looked at, an index when
 * its image is first opened). {@code .thaw/status} at the root reports per-image statistics.
 * Thread-safe.
 */
final class MountTree {
  static final String STATUS_DIR = ".thaw";
  static final String STATUS_FILE = "status";
  private static final long LIST_TTL_NANOS = Duration.ofSeconds(30).toNanos();
  private static final ObjectMapper JSON = new ObjectMapper();

  /** What a path names. */
  sealed interface Node permits Dir, ImageFile, StatusFile {}

  /** A directory and its entry names. */
  record Dir(List<String> entries, long mtime) implements Node {}

  /** An image archive of a snapshot, or (snapshot null) an image opened beforehand. */
  record ImageFile(SnapshotPath snapshot, String archive, long size, long mtime) implements Node {}

  /** {@code .thaw/status}. */
  record StatusFile() implements Node {}

  private final ChunkStore store;
  private final FetchPipeline pipeline;
  private final ChunkCache cache;
  private final KeyPolicy key;
  private final SnapshotPath fixed;
  private final Map<String, Image> images;
  private final Mounter.Options options;
  private final long mountTime = System.currentTimeMillis() / 1000;
  private final Map<SnapshotPath, Manifest> manifests = new ConcurrentHashMap<>();
  private final Map<String, ImageReader> readers = new ConcurrentHashMap<>();
  private final Map<String, LiveRestore> lives = new ConcurrentHashMap<>();
  private volatile List<SnapshotPath> snapshots;
  private volatile long listedAt;

  /** The snapshots of a store, or one snapshot ({@code fixed} not null). */
  MountTree(ChunkStore store, FetchPipeline pipeline, ChunkCache cache, KeyPolicy key,
      SnapshotPath fixed, Mounter.Options options) {
    this(store, pipeline, cache, key, fixed, null, options);
  }

  /** Images opened beforehand, at the root by name. */
  MountTree(List<Image> images, FetchPipeline pipeline, ChunkCache cache, Mounter.Options options) {
    this(pipeline.store(), pipeline, cache, null, null, byName(images), options);
  }

  private MountTree(ChunkStore store, FetchPipeline pipeline, ChunkCache cache, KeyPolicy key,
      SnapshotPath fixed, Map<String, Image> images, Mounter.Options options) {
    this.store = store;
    this.pipeline = pipeline;
    this.cache = cache;
    this.key = key;
    this.fixed = fixed;
    this.images = images;
    this.options = options;
  }

  private static Map<String, Image> byName(List<Image> images) {
    Map<String, Image> m = new LinkedHashMap<>();
    for (Image i : images) {
      if (i.name().equals(STATUS_DIR) || m.putIfAbsent(i.name(), i) != null) {
        throw new IllegalArgumentException("two images named " + i.name());
      }
    }
    return m;
  }

  /** Reads what must be there before the mount is ready (the fixed snapshot's manifest). */
  void preload() throws IOException {
    if (fixed != null) {
      // admitted by the key policy here, so that a snapshot it refuses fails the mount
      manifests.putIfAbsent(fixed, Snapshot.open(store, fixed, key).manifest());
      if (options.writable() != null) {
        openTargets();
      }
    } else if (images == null) {
      snapshots();
    }
  }

  /** Resolves a FUSE path ("/", "/a.img", "/vm/100/T/a.img"); empty when nothing is there. */
  Optional<Node> resolve(String path) throws IOException {
    List<String> parts = new ArrayList<>();
    for (String p : path.split("/")) {
      if (!p.isEmpty()) {
        parts.add(p);
      }
    }
    if (!parts.isEmpty() && parts.get(0).equals(STATUS_DIR)) {
      if (parts.size() == 1) {
        return Optional.of(new Dir(List.of(STATUS_FILE), mountTime));
      }
      return parts.size() == 2 && parts.get(1).equals(STATUS_FILE)
          ? Optional.of(new StatusFile()) : Optional.empty();
    }
    if (images != null) {
      return resolveImage(parts);
    }
    if (fixed != null) {
      return resolveInSnapshot(fixed, parts, true);
    }
    List<SnapshotPath> all = snapshots();
    if (parts.size() <= 3) {
      LinkedHashSet<String> names = new LinkedHashSet<>();
      boolean exists = parts.isEmpty();
      long mtime = mountTime;
      for (SnapshotPath s : all) {
        if (!s.namespace().isEmpty()) {
          continue; // namespaces are not shown in the tree yet
        }
        List<String> sp = List.of(s.type(), s.id(), s.timeString());
        if (sp.subList(0, parts.size()).equals(parts)) {
          exists = true;
          if (parts.size() < 3) {
            names.add(sp.get(parts.size()));
          } else {
            return resolveInSnapshot(s, List.of(), false);
          }
        }
      }
      if (!exists) {
        return Optional.empty();
      }
      List<String> entries = new ArrayList<>(names);
      if (parts.isEmpty()) {
        entries.add(STATUS_DIR);
      }
      return Optional.of(new Dir(entries, mtime));
    }
    if (parts.size() == 4) {
      SnapshotPath s;
      try {
        s = SnapshotPath.parse(parts.get(0) + "/" + parts.get(1) + "/" + parts.get(2));
      } catch (IllegalArgumentException e) {
        return Optional.empty();
      }
      if (!all.contains(s)) {
        return Optional.empty();
      }
      return resolveInSnapshot(s, parts.subList(3, 4), false);
    }
    return Optional.empty();
  }

  private Optional<Node> resolveInSnapshot(SnapshotPath s, List<String> parts, boolean root) throws IOException {
    Manifest m = manifest(s);
    long mtime = m.backupTime();
    if (parts.isEmpty()) {
      List<String> entries = new ArrayList<>();
      for (Manifest.FileInfo f : m.files()) {
        if (f.filename().endsWith(Snapshot.FIXED_INDEX_SUFFIX)) {
          entries.add(archiveName(f));
        }
      }
      if (root) {
        entries.add(STATUS_DIR);
      }
      return Optional.of(new Dir(entries, mtime));
    }
    if (parts.size() != 1) {
      return Optional.empty();
    }
    return m.file(parts.get(0) + Snapshot.FIXED_INDEX_SUFFIX)
        .map(f -> new ImageFile(s, parts.get(0), f.size(), mtime));
  }

  private Optional<Node> resolveImage(List<String> parts) {
    if (parts.isEmpty()) {
      List<String> entries = new ArrayList<>(images.keySet());
      entries.add(STATUS_DIR);
      return Optional.of(new Dir(entries, mountTime));
    }
    Image img = parts.size() == 1 ? images.get(parts.get(0)) : null;
    return img == null ? Optional.empty() : Optional.of(new ImageFile(null, img.name(), img.size(), mountTime));
  }

  private static String archiveName(Manifest.FileInfo f) {
    return f.filename().substring(0, f.filename().length() - Snapshot.FIXED_INDEX_SUFFIX.length());
  }

  private Manifest manifest(SnapshotPath s) throws IOException {
    Manifest m = manifests.get(s);
    if (m == null) {
      m = Snapshot.readManifest(store, s, key.key());
      manifests.putIfAbsent(s, m);
    }
    return m;
  }

  private List<SnapshotPath> snapshots() throws IOException {
    List<SnapshotPath> s = snapshots;
    if (s == null || System.nanoTime() - listedAt > LIST_TTL_NANOS) {
      s = store.listSnapshots();
      snapshots = s;
      listedAt = System.nanoTime();
    }
    return s;
  }

  /**
   * Opens every image's target of a writable mount now, so that background restores start at
   * once and a bad target fails the mount instead of a later open.
   */
  private void openTargets() throws IOException {
    int n = 0;
    for (String archive : ((Dir) resolveInSnapshot(fixed, List.of(), false).orElseThrow()).entries()) {
      Path target = options.writable().targetFor(archive);
      if (target == null) {
        continue;
      }
      ImageFile f = (ImageFile) resolveInSnapshot(fixed, List.of(archive), false).orElseThrow();
      lives.put(archive, LiveRestore.open(reader(f), target, Restorer.defaultStateFile(target), options.writable().live()));
      n++;
    }
    for (String a : options.writable().pairs().keySet()) {
      if (!lives.containsKey(a)) {
        throw new IOException("snapshot " + fixed + " has no image archive '" + a + "'");
      }
    }
    if (n == 0) {
      throw new IOException("no image of " + fixed + " has a target");
    }
  }

  /** The live restore or overlay of an image, or null when it is read-only. */
  LiveRestore live(ImageFile f) {
    return fixed != null && f.snapshot().equals(fixed) ? lives.get(f.archive()) : null;
  }

  /** Starts the background restores (once the mount answers). */
  void startBackground() {
    lives.values().forEach(LiveRestore::start);
  }

  /** Stops background restores and makes every target durable. */
  void close() throws IOException {
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

  /** The reader of an image, opened (index read and checked) on first use. */
  ImageReader reader(ImageFile f) throws IOException {
    String k = f.snapshot() == null ? f.archive() : f.snapshot() + "/" + f.archive();
    ImageReader r = readers.get(k);
    if (r == null) {
      Image img = f.snapshot() == null ? images.get(f.archive())
          : Snapshot.open(store, f.snapshot(), key).openImage(f.archive(), pipeline);
      r = new ImageReader(img, cache, options.readAhead(), options.readAheadBytes(), options.readTimeout());
      ImageReader prev = readers.putIfAbsent(k, r);
      if (prev != null) {
        r = prev;
      }
    }
    return r;
  }

  /** The status document: cache, pipeline and per-image counters. */
  byte[] status() {
    ObjectNode root = JSON.createObjectNode();
    root.put("store", store.describe());
    if (fixed != null) {
      root.put("snapshot", fixed.toString());
    }
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
    readers.entrySet().stream().sorted(Map.Entry.comparingByKey()).forEach(e -> {
      ImageReader r = e.getValue();
      ImageReader.Stats st = r.stats();
      ObjectNode o = list.addObject();
      o.put("path", fixed != null || images != null ? r.image().name() : e.getKey());
      o.put("size", r.image().size());
      o.put("chunks_total", r.image().chunkCount());
      o.put("chunks_cached", r.cachedChunks());
      o.put("chunks_fetched", st.fetched());
      o.put("bytes_fetched", st.bytesFetched());
      o.put("fetches_in_flight", ps.inFlight());
      long lookups = st.cacheHits() + st.cacheMisses() + st.readAheadHits();
      o.put("cache_hit_rate", lookups == 0 ? 0 : (double) (st.cacheHits() + st.readAheadHits()) / lookups);
      o.put("fetch_latency_p50_ms", ps.latencyP50Micros() / 1000.0);
      o.put("fetch_latency_p99_ms", ps.latencyP99Micros() / 1000.0);
      o.put("reads", st.reads());
      o.put("bytes_read", st.bytesRead());
      o.put("read_latency_p50_ms", st.readP50Micros() / 1000.0);
      o.put("read_latency_p99_ms", st.readP99Micros() / 1000.0);
      o.put("read_ahead_hits", st.readAheadHits());
      o.put("read_ahead_issued", st.readAheadIssued());
      o.put("errors", st.errors());
      LiveRestore live = fixed != null ? lives.get(r.image().name()) : null;
      if (live != null) {
        LiveRestore.Progress lp = live.progress();
        ObjectNode lr = o.putObject("restore");
        lr.put("mode", lp.background() ? "live-restore" : "overlay");
        lr.put("state", lp.complete() ? "complete" : lp.error() != null ? "stopped" : lp.background() ? "running" : "overlay");
        lr.put("chunks_present", lp.present());
        lr.put("chunks_total", lp.chunks());
        lr.put("percent", Math.round(1000.0 * lp.bytesPresent() / Math.max(1, lp.size())) / 10.0);
        lr.put("rate_bytes_per_s", Math.round(lp.rate()));
        lr.put("elapsed_s", Math.round(lp.backgroundNanos() / 1e7) / 100.0);
        long left = lp.size() - lp.bytesPresent();
        if (lp.background() && !lp.complete() && lp.rate() > 0) {
          lr.put("eta_s", Math.round(left / lp.rate()));
        }
        lr.put("guest_writes", lp.guestWrites());
        if (lp.error() != null) {
          lr.put("error", lp.error());
        }
      }
    });
    try {
      return (JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }
}
