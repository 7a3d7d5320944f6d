package dev.thaw.fuse;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.image.Catalog;
import dev.thaw.image.ChunkCache;
import dev.thaw.image.Image;
import dev.thaw.image.ImageReader;
import dev.thaw.image.KeyPolicy;
import dev.thaw.image.Snapshot;
import dev.thaw.image.SnapshotImages;
import dev.thaw.restore.LiveRestore;
import dev.thaw.restore.LiveRestores;
import dev.thaw.restore.ServeStatus;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.SnapshotPath;
import dev.thaw.volume.ImageVolumes;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.function.Supplier;

/**
 * Mounts a datastore, one snapshot of it, or images opened beforehand (casync indexes) with FUSE,
 * read-only or with writable images ({@link LiveRestores.Targets}), and serves it until it is
 * unmounted ({@code thaw unmount}, {@code fusermount -u}, SIGINT/SIGTERM, or the process dying:
 * {@code auto_unmount} then cleans up the mount point). Beside each read-only image, its partitions
 * and LVM logical volumes are read-only files ({@link ImageVolumes}: scanned when the image's
 * directory is first listed). Everything a mount serves is opened before it mounts, so that a bad
 * store, snapshot or target fails the mount, not a read.
 */
public final class Mounter {
  /**
   * How a mount serves its images.
   *
   * @param cacheBytes bound of the chunk cache
   * @param reads how images are read (read-ahead, read timeout)
   * @param allowOther let other users read the mount (needs user_allow_other for non-root)
   * @param writable images writable through live restores or overlays, or null (read-only)
   * @param pageCache read-only images go through the kernel's page cache (which shared mmap needs;
   *     partition and volume files always do) instead of direct I/O, where every read comes to
   *     thaw's own cache: one copy less per byte, and no second cache of the same data
   */
  public record Options(
      long cacheBytes,
      ImageReader.Settings reads,
      boolean allowOther,
      LiveRestores.Targets writable,
      boolean pageCache) {}

  private Mounter() {}

  /** The libfuse options thaw mounts with. */
  static List<String> fuseOptions(Options o) {
    List<String> opts =
        new ArrayList<>(
            List.of(
                "fsname=thaw",
                "subtype=thaw",
                "default_permissions",
                "auto_unmount",
                "max_background=64",
                "congestion_threshold=48",
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
   * Mounts a whole datastore ({@code TYPE/ID/TIME/ARCHIVE}, read-only) at {@code mountpoint} and
   * blocks until unmounted. {@code onReady} runs once the file system answers.
   *
   * @param key which snapshots to trust and how their archives decode
   */
  public static void run(
      Binding binding,
      ChunkStore store,
      FetchPipeline pipeline,
      KeyPolicy key,
      Path mountpoint,
      Options options,
      PrintStream log,
      Runnable onReady)
      throws IOException {
    checkMountpoint(mountpoint);
    if (options.writable() != null) {
      throw new IOException("a writable mount (live restore or overlay) needs a SNAPSHOT");
    }
    ChunkCache cache = cache(options, pipeline);
    Catalog catalog = new Catalog(store, key, pipeline, cache, options.reads(), w -> warn(log, w));
    catalog.snapshots(); // fail before mounting if the store cannot be listed
    ImageVolumes volumes = volumes(log);
    MountTree tree = new DatastoreTree(catalog, now(), volumes);
    serve(
        binding,
        tree,
        status(store.describe(), null, cache, pipeline, () -> catalog.readers(), Map.of(), volumes),
        null,
        mountpoint,
        options,
        log,
        onReady);
  }

  /**
   * Mounts one snapshot's images at {@code mountpoint}, writable where {@link Options#writable}
   * gives a target, and blocks until unmounted. Every image's index is read first: a damaged one is
   * left out with a warning on {@code log}.
   */
  public static void run(
      Binding binding,
      ChunkStore store,
      FetchPipeline pipeline,
      KeyPolicy key,
      SnapshotPath snapshot,
      Path mountpoint,
      Options options,
      PrintStream log,
      Runnable onReady)
      throws IOException {
    checkMountpoint(mountpoint);
    ChunkCache cache = cache(options, pipeline);
    SnapshotImages images =
        SnapshotImages.open(Snapshot.open(store, snapshot, key), pipeline, cache, options.reads());
    images.warnings().forEach(w -> warn(log, w));
    if (images.readers().isEmpty()) {
      throw new IOException(
          "snapshot "
              + snapshot
              + " has no image that can be opened"
              + (images.warnings().isEmpty() ? "" : " (see the warnings above)"));
    }
    LiveRestores lives =
        options.writable() == null ? null : LiveRestores.open(images, options.writable());
    Map<String, LiveRestore> writable = lives == null ? Map.of() : lives.all();
    ImageVolumes volumes = volumes(log);
    MountTree tree =
        new ImagesTree(
            images.readers(), writable, images.snapshot().manifest().backupTime(), now(), volumes);
    serve(
        binding,
        tree,
        status(
            store.describe(),
            snapshot.toString(),
            cache,
            pipeline,
            () -> images.readers(),
            writable,
            volumes),
        lives,
        mountpoint,
        options,
        log,
        onReady);
  }

  /**
   * Mounts images opened beforehand (each {@code MOUNTPOINT/<name>}, read through {@code pipeline})
   * at {@code mountpoint} and blocks until unmounted.
   */
  public static void run(
      Binding binding,
      List<Image> images,
      FetchPipeline pipeline,
      Path mountpoint,
      Options options,
      PrintStream log,
      Runnable onReady)
      throws IOException {
    checkMountpoint(mountpoint);
    ChunkCache cache = cache(options, pipeline);
    Map<String, ImageReader> readers = new LinkedHashMap<>();
    for (Image i : images) {
      if (readers.putIfAbsent(i.name(), new ImageReader(i, cache, options.reads())) != null) {
        throw new IllegalArgumentException("two images named " + i.name());
      }
    }
    long now = now();
    ImageVolumes volumes = volumes(log);
    MountTree tree = new ImagesTree(readers, Map.of(), now, now, volumes);
    serve(
        binding,
        tree,
        status(
            pipeline.store().describe(), null, cache, pipeline, () -> readers, Map.of(), volumes),
        null,
        mountpoint,
        options,
        log,
        onReady);
  }

  /**
   * What {@link #run(Binding, ChunkStore, FetchPipeline, KeyPolicy, SnapshotPath, Path, Options,
   * PrintStream, Runnable)} does for a read-only mount, in the same order, but with no kernel
   * mount: opens the snapshot's images, loads libfuse, and reads the status file and the first
   * {@code bytes} of each file at the root (images and their volumes) through the FUSE callbacks.
   * The launcher's start-up training runs it, so that a mount's classes are in its start-up
   * archive; it needs no /dev/fuse.
   *
   * @return the bytes read
   */
  public static long rehearse(
      Binding binding,
      ChunkStore store,
      FetchPipeline pipeline,
      KeyPolicy key,
      SnapshotPath snapshot,
      Options options,
      long bytes)
      throws IOException {
    ChunkCache cache = cache(options, pipeline);
    SnapshotImages images =
        SnapshotImages.open(Snapshot.open(store, snapshot, key), pipeline, cache, options.reads());
    PrintStream quiet = new PrintStream(java.io.OutputStream.nullOutputStream());
    ImageVolumes volumes = volumes(quiet);
    MountTree tree =
        new ImagesTree(
            images.readers(), Map.of(), images.snapshot().manifest().backupTime(), now(), volumes);
    binding.await();
    ThawFuse fs =
        new ThawFuse(
            tree,
            status(
                store.describe(),
                snapshot.toString(),
                cache,
                pipeline,
                () -> images.readers(),
                Map.of(),
                volumes),
            quiet,
            0,
            0,
            options.pageCache(),
            () -> {});
    return new Rehearsal(fs).run(bytes);
  }

  /**
   * jnr-fuse being bound on a thread of its own ({@link #bind}), which a mount awaits before it
   * makes its file system. Thread-safe.
   */
  public static final class Binding {
    private final Thread thread;

    private Binding(Thread thread) {
      this.thread = thread;
    }

    /** Waits until the binding has ended, in success or failure. */
    void await() throws IOException {
      try {
        thread.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("interrupted while binding libfuse");
      }
    }
  }

  /**
   * Starts binding jnr-fuse in the background, for a mount to come: loading jffi's native stub and
   * libfuse's symbols and making a closure per callback took about 0.1 s that a mount used to spend
   * after it had read its store and index. Started first thing, it runs beside that work. The file
   * system made here serves nothing and is dropped; what it leaves is what the JVM and jnr keep
   * loaded, so that the real one is quick to make. A failure here shows again, with its message,
   * when the real one is made.
   */
  public static Binding bind() {
    Thread t =
        new Thread(
            () -> {
              try {
                new ThawFuse(
                    new ImagesTree(Map.of(), Map.of(), 0, 0, new ImageVolumes(w -> {})),
                    () -> new byte[0],
                    new PrintStream(java.io.OutputStream.nullOutputStream()),
                    0,
                    0,
                    false,
                    () -> {});
              } catch (RuntimeException | LinkageError e) {
                // libfuse missing or unloadable: the real mount reports it
              }
            },
            "thaw-fuse-bind");
    t.setDaemon(true);
    t.start();
    return new Binding(t);
  }

  private static long now() {
    return System.currentTimeMillis() / 1000;
  }

  /** A warning in the mount log; those written before the mount is ready reach the user. */
  private static void warn(PrintStream log, String message) {
    log.println("thaw: warning: " + message);
    log.flush();
  }

  /** The volumes of the images a mount serves; what a scan cannot trust goes to the log. */
  private static ImageVolumes volumes(PrintStream log) {
    return new ImageVolumes(w -> warn(log, w));
  }

  private static ChunkCache cache(Options options, FetchPipeline pipeline) {
    return ChunkCache.within(options.cacheBytes(), pipeline);
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

  /** The status document of a mount, made afresh each time {@code .thaw/status} is read. */
  private static Supplier<byte[]> status(
      String store,
      String snapshot,
      ChunkCache cache,
      FetchPipeline pipeline,
      Supplier<Map<String, ImageReader>> readers,
      Map<String, LiveRestore> writable,
      ImageVolumes volumes) {
    return () ->
        ServeStatus.of(store, snapshot, cache, pipeline.stats(), readers.get(), writable, volumes)
            .toJson();
  }

  /**
   * Mounts {@code tree} and serves it until unmounted. Background restores start once it answers;
   * whatever happens, they are closed (stopped, made durable) before a shutdown hook lets the JVM
   * end.
   *
   * @param binding awaited before the file system is made
   */
  private static void serve(
      Binding binding,
      MountTree tree,
      Supplier<byte[]> status,
      LiveRestores lives,
      Path mountpoint,
      Options options,
      PrintStream log,
      Runnable onReady)
      throws IOException {
    CountDownLatch unmounted = new CountDownLatch(1);
    Thread hook = null;
    binding.await();
    try {
      long uid = ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).longValue();
      long gid = ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:gid")).longValue();
      ThawFuse fs =
          new ThawFuse(
              tree,
              status,
              log,
              uid,
              gid,
              options.pageCache(),
              () -> {
                if (lives != null) {
                  lives.start(); // after the mount is up: the first read should not wait for it
                }
                onReady.run();
              });
      hook =
          new Thread(
              () -> {
                fs.umount(); // SIGINT/SIGTERM: leave no mount behind
                try {
                  unmounted.await();
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                }
              },
              "thaw-unmount");
      Runtime.getRuntime().addShutdownHook(hook);
      List<String> args = new ArrayList<>();
      args.add("-o");
      args.add(String.join(",", fuseOptions(options)));
      fs.mount(mountpoint, true, false, args.toArray(new String[0]));
    } catch (RuntimeException e) {
      throw new IOException("cannot mount at " + mountpoint + ": " + e.getMessage(), e);
    } finally {
      if (lives != null) {
        try {
          lives.close(); // background restores stop; every target and state file made durable
        } catch (IOException e) {
          log.println("thaw mount: closing: " + e.getMessage());
        }
      }
      unmounted.countDown();
      if (hook != null) {
        try {
          Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
          // shutting down
        }
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
        if (f.length > 5
            && dash > 0
            && unescape(f[4]).equals(mp)
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
