package dev.thaw.fuse;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.image.ChunkCache;
import dev.thaw.image.Image;
import dev.thaw.image.KeyPolicy;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.SnapshotPath;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import dev.thaw.restore.LiveRestore;
import java.util.concurrent.CountDownLatch;

/**
 * Mounts a datastore, one snapshot of it, or images opened beforehand (casync indexes) with
 * FUSE, read-only or with writable images ({@link Writable}), and serves it until it is
 * unmounted ({@code thaw unmount}, {@code fusermount -u}, SIGINT/SIGTERM, or the process dying:
 * {@code auto_unmount} then cleans up the mount point).
 */
public final class Mounter {
  /**
   * @param cacheBytes bound of the chunk cache
   * @param readAhead chunks a sequential reader keeps ahead (0: off)
   * @param readAheadBytes and at least this many bytes ahead (matters for small chunks)
   * @param readTimeout how long a read waits for a chunk before it fails with EIO
   * @param allowOther let other users read the mount (needs user_allow_other for non-root)
   * @param writable images writable through live restores or overlays, or null (read-only)
   * @param pageCache read-only images go through the kernel's page cache (which shared mmap
   *     needs) instead of direct I/O, where every read comes to thaw's own cache: one copy less
   *     per byte, and no second cache of the same data
   */
  public record Options(long cacheBytes, int readAhead, long readAheadBytes, Duration readTimeout,
      boolean allowOther, Writable writable, boolean pageCache) {
    public Options(long cacheBytes, int readAhead, long readAheadBytes, Duration readTimeout, boolean allowOther) {
      this(cacheBytes, readAhead, readAheadBytes, readTimeout, allowOther, null, false);
    }
  }

  /**
   * Makes images writable, each backed by a local target that its chunks move into
   * ({@link LiveRestore}): a live restore when {@code live.background()}, else an overlay.
   *
   * @param dir the target of an archive is {@code dir/ARCHIVE} unless {@code pairs} names one;
   *     null when only {@code pairs} are given
   * @param pairs archive name to target path (a file or block device)
   */
  public record Writable(Path dir, Map<String, Path> pairs, LiveRestore.Options live) {
    /** The target of {@code archive}, or null if it stays read-only. */
    Path targetFor(String archive) {
      Path p = pairs.get(archive);
      return p != null ? p : dir != null ? dir.resolve(archive) : null;
    }
  }

  private Mounter() {}

  /**
   * The bytes the chunk cache (and the read-ahead it lends memory to) may hold: the user's
   * cache size less what chunks in the fetch pipeline may occupy at once, so that cached, held
   * and in-flight chunks together stay within the cache size.
   */
  static long chunkBudget(long cacheBytes, FetchPipeline pipeline) {
    long inFlight = (long) pipeline.maxChunksInMemory() * dev.thaw.format.FixedIndex.DEFAULT_CHUNK_SIZE;
    return Math.max(cacheBytes / 2, cacheBytes - inFlight);
  }

  /** The libfuse options thaw mounts with. */
  static List<String> fuseOptions(Options o) {
    List<String> opts = new ArrayList<>(List.of("fsname=thaw", "subtype=thaw",
        "default_permissions", "auto_unmount", "max_background=64", "congestion_threshold=48",
        "max_read=131072"));
    if (o.writable() == null) {
      opts.add(0, "ro");
    } else {
      opts.add("big_writes"); // 128 KiB writes instead of 4 KiB ones
      opts.add("max_write=131072");
    }
    if (o.allowOther()) {
      opts.add("allow_other");
    }
    return opts;
  }

  /**
   * Mounts at {@code mountpoint} and blocks until unmounted. {@code onReady} runs once the file
   * system answers.
   *
   * @param key which snapshots to trust and how their archives decode
   * @param snapshot the snapshot to show at the root, or null for the whole datastore
   */
  public static void run(ChunkStore store, FetchPipeline pipeline, KeyPolicy key, SnapshotPath snapshot,
      Path mountpoint, Options options, PrintStream log, Runnable onReady) throws IOException {
    checkMountpoint(mountpoint);
    if (options.writable() != null && snapshot == null) {
      throw new IOException("a writable mount (live restore or overlay) needs a SNAPSHOT");
    }
    MountTree tree = new MountTree(store, pipeline, cache(options, pipeline), key, snapshot, options);
    try {
      tree.preload(); // fail before mounting if the store, snapshot or a target is unusable
    } catch (IOException | RuntimeException e) {
      tree.close();
      throw e;
    }
    serve(tree, mountpoint, options, log, onReady);
  }

  /**
   * Mounts images opened beforehand (each {@code MOUNTPOINT/<name>}, read through
   * {@code pipeline}) at {@code mountpoint} and blocks until unmounted.
   */
  public static void run(List<Image> images, FetchPipeline pipeline, Path mountpoint, Options options,
      PrintStream log, Runnable onReady) throws IOException {
    checkMountpoint(mountpoint);
    serve(new MountTree(images, pipeline, cache(options, pipeline), options), mountpoint, options, log, onReady);
  }

  private static ChunkCache cache(Options options, FetchPipeline pipeline) {
    return new ChunkCache(chunkBudget(options.cacheBytes(), pipeline));
  }

  private static void checkMountpoint(Path mountpoint) throws IOException {
    if (!Files.isDirectory(mountpoint)) {
      throw new IOException("mount point " + mountpoint + " is not a directory");
    }
    try (var entries = Files.list(mountpoint)) {
      if (entries.findAny().isPresent()) {
        throw new IOException("mount point " + mountpoint + " is not empty");
      }
    }
  }

  private static void serve(MountTree tree, Path mountpoint, Options options, PrintStream log, Runnable onReady)
      throws IOException {
    long uid = ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).longValue();
    long gid = ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:gid")).longValue();
    CountDownLatch unmounted = new CountDownLatch(1);
    ThawFuse fs = new ThawFuse(tree, log, uid, gid, options.pageCache(), () -> {
      tree.startBackground(); // after the mount is up: the first read should not wait for it
      onReady.run();
    });
    Thread hook = new Thread(() -> {
      fs.umount(); // SIGINT/SIGTERM: leave no mount behind
      try {
        unmounted.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }, "thaw-unmount");
    Runtime.getRuntime().addShutdownHook(hook);
    List<String> args = new ArrayList<>();
    args.add("-o");
    args.add(String.join(",", fuseOptions(options)));
    try {
      fs.mount(mountpoint, true, false, args.toArray(new String[0]));
    } catch (RuntimeException e) {
      throw new IOException("cannot mount at " + mountpoint + ": " + e.getMessage(), e);
    } finally {
      try {
        tree.close(); // background restores stop; every target and state file made durable
      } catch (IOException e) {
        log.println("thaw mount: closing: " + e.getMessage());
      }
      unmounted.countDown();
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException e) {
        // shutting down
      }
    }
  }

  /** Whether {@code mountpoint} is a thaw mount now (from /proc/self/mountinfo). */
  public static boolean isMounted(Path mountpoint) {
    String mp = mountpoint.toAbsolutePath().normalize().toString();
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
        String[] f = line.split(" ");
        int dash = line.indexOf(" - ");
        if (f.length > 5 && dash > 0 && unescape(f[4]).equals(mp)
            && line.substring(dash + 3).startsWith("fuse.thaw ")) {
          return true;
        }
      }
    } catch (IOException e) {
      return false;
    }
    return false;
  }

  private static String unescape(String s) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '\\' && i + 3 < s.length()) {
        sb.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
        i += 3;
      } else {
        sb.append(c);
      }
    }
    return sb.toString();
  }
}
