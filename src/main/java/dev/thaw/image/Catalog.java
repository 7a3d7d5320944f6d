package dev.thaw.image;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.format.FormatException;
import dev.thaw.format.Manifest;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.SnapshotPath;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * Every snapshot of a store, for a front end that shows a whole datastore: the list re-read at most
 * every 30 s, and each snapshot opened once, when it is first asked for ({@link SnapshotImages};
 * its warnings go to the given consumer). A snapshot the key policy refuses (made with a key the
 * catalog was not given, or not signed by the one it was) is {@link Locked}: its manifest is known,
 * its images are not opened. Thread-safe.
 */
public final class Catalog {
  private static final long LIST_TTL_NANOS = Duration.ofSeconds(30).toNanos();

  /** A snapshot as the catalog has it. */
  public sealed interface Entry permits Opened, Locked {
    Manifest manifest();
  }

  /** A snapshot whose images are open. */
  public record Opened(SnapshotImages images) implements Entry {
    @Override
    public Manifest manifest() {
      return images.snapshot().manifest();
    }
  }

  /** A snapshot that needs a key: listed from its manifest; {@code reason} says which key. */
  public record Locked(Manifest manifest, String reason) implements Entry {}

  private final ChunkStore store;
  private final KeyPolicy key;
  private final FetchPipeline pipeline;
  private final ChunkCache cache;
  private final ImageReader.Settings settings;
  private final Consumer<String> warnings;
  private final Map<SnapshotPath, Entry> entries = new ConcurrentHashMap<>();
  private volatile List<SnapshotPath> snapshots;
  private volatile long listedAt;

  /**
   * @param key which snapshots to trust and how their archives decode
   * @param warnings receives what opening a snapshot left out (its images whose index is damaged)
   */
  public Catalog(
      ChunkStore store,
      KeyPolicy key,
      FetchPipeline pipeline,
      ChunkCache cache,
      ImageReader.Settings settings,
      Consumer<String> warnings) {
    this.store = store;
    this.key = key;
    this.pipeline = pipeline;
    this.cache = cache;
    this.settings = settings;
    this.warnings = warnings;
  }

  public ChunkStore store() {
    return store;
  }

  /** The store's snapshots, sorted; re-read when the last listing is over 30 s old. */
  public List<SnapshotPath> snapshots() throws IOException {
    List<SnapshotPath> s = snapshots;
    if (s == null || System.nanoTime() - listedAt > LIST_TTL_NANOS) {
      s = store.listSnapshots();
      snapshots = s;
      listedAt = System.nanoTime();
    }
    return s;
  }

  /** A snapshot, opened on first use (its indexes read and checked then). */
  public Entry entry(SnapshotPath path) throws IOException {
    Entry e = entries.get(path);
    if (e != null) {
      return e;
    }
    Snapshot snap;
    try {
      snap = Snapshot.open(store, path, key);
    } catch (FormatException ex) {
      // the key policy refuses it (encrypted without a key, not signed by the key given):
      // listed from its manifest, not opened
      e = new Locked(Snapshot.readManifest(store, path, null), ex.getMessage());
      Entry prev = entries.putIfAbsent(path, e);
      return prev != null ? prev : e;
    }
    synchronized (this) {
      e = entries.get(path);
      if (e == null) {
        SnapshotImages images = SnapshotImages.open(snap, pipeline, cache, settings);
        images.warnings().forEach(warnings);
        e = new Opened(images);
        entries.put(path, e);
      }
      return e;
    }
  }

  /** Every image opened so far, by {@code TYPE/ID/TIME/ARCHIVE}. */
  public Map<String, ImageReader> readers() {
    Map<String, ImageReader> m = new java.util.TreeMap<>();
    entries.forEach(
        (path, e) -> {
          if (e instanceof Opened o) {
            o.images().readers().forEach((archive, r) -> m.put(path + "/" + archive, r));
          }
        });
    return m;
  }
}
