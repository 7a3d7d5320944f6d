package dev.thaw.cli;

import dev.thaw.crypto.CryptConfig;
import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fuse.Mounter;
import dev.thaw.image.ImageReader;
import dev.thaw.restore.LiveRestore;
import dev.thaw.restore.LiveRestores;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.SnapshotPath;
import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "mount", mixinStandardHelpOptions = true,
    description = {"Mount backups read-only with FUSE; chunks are fetched when first read.",
        "With SNAPSHOT: MOUNTPOINT/<archive> for each image. Without: MOUNTPOINT/<type>/<id>/<time>/<archive>.",
        "With --index NAME.caibx (and --store NAME.castr): MOUNTPOINT/NAME.",
        "MOUNTPOINT/.thaw/status reports cache, fetch and read-ahead statistics (JSON).",
        "Returns once the mount is ready; the file system runs in a background process until",
        "'thaw unmount MOUNTPOINT' (or fusermount -u). --foreground keeps it in this terminal."})
final class MountCommand implements Callable<Integer> {
  @Mixin
  StoreOptions storeOptions;

  @Mixin
  KeyOptions key;

  @Mixin
  TrustOptions trust;

  @Mixin
  IndexOptions casync;

  @Spec
  CommandSpec spec;

  @Option(names = "--cache-size", paramLabel = "SIZE", defaultValue = "512M",
      description = "Memory for verified chunks (default: ${DEFAULT-VALUE}).")
  String cacheSize;

  @Option(names = "--readahead", paramLabel = "N", defaultValue = "16",
      description = "Chunks a sequential reader keeps fetched ahead; 0 disables (default: ${DEFAULT-VALUE}).")
  int readAhead;

  @Option(names = "--readahead-size", paramLabel = "SIZE", defaultValue = "64M",
      description = {"...and at least this many bytes, so that small chunks (casync: 64 KiB)",
          "keep enough fetches going (default: ${DEFAULT-VALUE})."})
  String readAheadSize;

  @Option(names = "--read-timeout", paramLabel = "SECONDS", defaultValue = "60",
      description = "A read waiting longer than this for the store fails with EIO (default: ${DEFAULT-VALUE}).")
  int readTimeout;

  @Option(names = "--page-cache",
      description = {"Read-only images go through the kernel's page cache (for programs that",
          "mmap them shared) instead of direct I/O through thaw's cache."})
  boolean pageCache;

  @Option(names = "--restore-to", paramLabel = "DIR|ARCHIVE=PATH",
      description = {"Live restore: images become writable and are restored in the background",
          "into DIR/ARCHIVE, or into PATH (a file or block device) for each ARCHIVE=PATH given.",
          "Reads and writes go on meanwhile; run the same command again to resume."})
  List<String> restoreTo;

  @Option(names = "--overlay", paramLabel = "DIR",
      description = "Writable, discardable view: changed chunks are kept in sparse files in DIR.")
  Path overlay;

  @Option(names = "--restore-rate", paramLabel = "BYTES/s",
      description = "Limit the background restore to this rate, e.g. 100M (default: no limit).")
  String restoreRate;

  @Option(names = "--foreground", description = "Serve in this process until unmounted.")
  boolean foreground;

  @Option(names = "--allow-other", description = "Let other users read the mount.")
  boolean allowOther;

  @Option(names = "--log", paramLabel = "FILE",
      description = {"Log of the background process (default: $XDG_STATE_HOME/thaw, else",
          "~/.local/state/thaw, mount-<mountpoint>.log)."})
  Path logFile;

  @Option(names = "--secrets-from-stdin", hidden = true)
  boolean secretsFromStdin;

  @Parameters(arity = "1..2", paramLabel = "[SNAPSHOT] MOUNTPOINT",
      description = "Snapshot (TYPE/ID/TIME) to show, and the directory to mount on.")
  List<String> positional;

  @Override
  public Integer call() throws Exception {
    if (casync.given()) {
      casync.checkArguments(spec, positional, 1, 1, key);
    }
    Path mountpoint = Path.of(positional.get(positional.size() - 1)).toAbsolutePath().normalize();
    SnapshotPath snapshot = positional.size() == 2 ? SnapshotPath.parse(positional.get(0)) : null;
    long readAheadBytes = Units.parseSize(readAheadSize);
    long cacheBytes = Units.parseSize(cacheSize);
    if (cacheBytes < 16L << 20) {
      throw new IllegalArgumentException("--cache-size must be at least 16M");
    }
    if (readAhead < 0 || readAhead > 1024) {
      throw new IllegalArgumentException("--readahead must be between 0 and 1024");
    }
    if (!Files.isDirectory(mountpoint)) {
      throw new IllegalArgumentException("mount point " + mountpoint + " is not a directory");
    }
    if (Mounter.isMounted(mountpoint)) {
      throw new IllegalArgumentException(mountpoint + " is a thaw mount already; 'thaw unmount " + mountpoint + "' first");
    }
    if (secretsFromStdin) {
      // the detached process: its secrets come on stdin, never from its environment
      java.util.Map<String, byte[]> secrets = Secrets.receive(System.in);
      key.passphrase = secrets.get(Secrets.PASSPHRASE);
      storeOptions.env = Secrets.overlay(System.getenv(), secrets);
    }
    writable(snapshot); // check the live-restore options in the user's terminal
    CryptConfig k = key.load(); // fail here, in the user's terminal, on a wrong passphrase
    if (!foreground) {
      return spawn(mountpoint, cacheBytes);
    }
    Mounter.Options o = new Mounter.Options(cacheBytes,
        new ImageReader.Settings(readAhead, readAheadBytes, Duration.ofSeconds(readTimeout)), allowOther,
        writable(snapshot), pageCache);
    try (ChunkStore store = casync.openStore(storeOptions); FetchPipeline pipeline = storeOptions.pipeline(store)) {
      String what = casync.given() ? casync.index : snapshot != null ? snapshot.toString() : store.describe();
      Runnable ready = () -> {
        System.err.println("thaw: mounted " + what + " at " + mountpoint);
        System.err.flush();
      };
      if (casync.given()) {
        Mounter.run(List.of(casync.open(storeOptions, pipeline)), pipeline, mountpoint, o, System.err, ready);
      } else if (snapshot != null) {
        Mounter.run(store, pipeline, trust.policy(k), snapshot, mountpoint, o, System.err, ready);
      } else {
        Mounter.run(store, pipeline, trust.policy(k), mountpoint, o, System.err, ready);
      }
    }
    System.err.println("thaw: unmounted " + mountpoint);
    return 0;
  }

  /** The writable-image settings from --restore-to / --overlay, or null for a read-only mount. */
  private LiveRestores.Targets writable(SnapshotPath snapshot) {
    if (restoreTo == null && overlay == null) {
      if (restoreRate != null) {
        throw new IllegalArgumentException("--restore-rate needs --restore-to");
      }
      return null;
    }
    if (restoreTo != null && overlay != null) {
      throw new IllegalArgumentException("give --restore-to or --overlay, not both");
    }
    if (snapshot == null) {
      throw new IllegalArgumentException("--restore-to and --overlay need a SNAPSHOT");
    }
    long rate = Units.parseRate(restoreRate);
    // the background restore keeps a few fetch threads free, so a guest's read never queues
    // behind a full set of background fetches
    int window = Math.max(1, storeOptions.parallel - Math.max(2, storeOptions.parallel / 4));
    LiveRestore.Options live = new LiveRestore.Options(restoreTo != null, window, rate);
    Path dir = null;
    java.util.Map<String, Path> pairs = new java.util.LinkedHashMap<>();
    for (String t : restoreTo != null ? restoreTo : List.of(overlay.toString())) {
      int eq = t.indexOf('=');
      if (eq > 0 && restoreTo != null) {
        pairs.put(t.substring(0, eq), Path.of(t.substring(eq + 1)).toAbsolutePath().normalize());
      } else if (dir == null) {
        dir = Path.of(t).toAbsolutePath().normalize();
      } else {
        throw new IllegalArgumentException("name one target directory; for several targets use ARCHIVE=PATH");
      }
    }
    if (dir != null && !Files.isDirectory(dir)) {
      throw new IllegalArgumentException((restoreTo != null ? "--restore-to " : "--overlay ") + dir
          + " is not a directory (create it first, or give ARCHIVE=PATH)");
    }
    return new LiveRestores.Targets(dir, pairs, live);
  }

  /** Starts the file system in a detached process and waits until it answers. */
  private int spawn(Path mountpoint, long cacheBytes) throws IOException, InterruptedException {
    Path log = logFile != null ? logFile.toAbsolutePath() : MountLog.defaultFor(mountpoint);
    MountLog.create(log);
    List<String> cmd = new ArrayList<>();
    if (new File("/usr/bin/setsid").canExecute()) {
      cmd.add("/usr/bin/setsid"); // its own session: a Ctrl-C or a closed terminal does not end it
    }
    cmd.add(ProcessHandle.current().info().command().orElse("java"));
    for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (!a.startsWith("-Xmx") && !a.startsWith("-Xmn") && !a.startsWith("-agentlib")
          && !a.startsWith("-javaagent") && !(a.startsWith("-XX:+Use") && a.endsWith("GC"))) {
        cmd.add(a);
      }
    }
    // heap: the cache, read-ahead and fetch buffers; see README "Memory"
    long heapMib = (cacheBytes >> 20) + 128;
    cmd.add("-Xmx" + heapMib + "m");
    // The cached chunks live long in recycled arrays (old generation); everything else dies
    // young. A small young generation leaves the old one room for the cache, and a serial
    // collector on two cores or fewer leaves the cores to the decoders (measured: a cold dd
    // through a mount spent 2-3 s of 8 s in G1's marking, and more in parallel GC threads).
    cmd.add(Runtime.getRuntime().availableProcessors() <= 2 ? "-XX:+UseSerialGC" : "-XX:+UseParallelGC");
    cmd.add("-Xmn" + Math.max(32, Math.min(96, heapMib / 4)) + "m");
    // The read path (jnr-fuse's glue, the cache, ours) compiled after a tenth of the usual calls:
    // interpreted, a cached 4 KiB read takes about 0.2 ms instead of 0.07 ms.
    cmd.add("-XX:CompileCommand=quiet");
    for (String pkg : List.of("dev.thaw.fuse", "dev.thaw.image", "ru.serce", "jnr", "com.kenai",
        "com.github.benmanes")) {
      cmd.add("-XX:CompileCommand=CompileThresholdScaling," + pkg + ".*::*,0.1");
    }
    cmd.add("-cp");
    cmd.add(jarPath());
    cmd.add(Main.class.getName());
    cmd.add("mount");
    cmd.add("--foreground");
    cmd.add("--secrets-from-stdin");
    cmd.addAll(daemonArgs());
    ProcessBuilder pb = new ProcessBuilder(cmd)
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
    // secrets reach the mount process once, on its stdin, and never sit in its environment
    Secrets.removeFrom(pb.environment());
    Process p = pb.start();
    try (OutputStream in = p.getOutputStream()) {
      Secrets.send(in, storeOptions.env, key.needsPassphrase() ? key.passphrase() : null);
    }
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (System.nanoTime() < deadline) {
      if (Mounter.isMounted(mountpoint)) {
        // what the mount process said while it started (warnings: an archive it could not show)
        MountLog.echoWarnings(log, System.err);
        System.err.println("thaw: mounted at " + mountpoint + " (pid " + p.pid() + ", log " + log + ")");
        System.err.println("thaw: end it with: thaw unmount " + mountpoint);
        return 0;
      }
      if (!p.isAlive()) {
        String out = MountLog.read(log).strip();
        throw new IOException("the mount process ended (exit " + p.exitValue() + ")"
            + (out.isEmpty() ? "" : ": " + out.replace("\n", "\n  ")));
      }
      Thread.sleep(50);
    }
    p.destroy();
    throw new IOException("the mount at " + mountpoint + " did not come up within 60 s; see " + log);
  }

  private static String jarPath() {
    try {
      return Path.of(Main.class.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
    } catch (java.net.URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  /** This command's options for the background process (everything but the spawning ones). */
  private List<String> daemonArgs() {
    List<String> a = new ArrayList<>();
    a.addAll(storeOptions.args());
    if (key.keyfile != null) {
      a.add("--keyfile=" + key.keyfile.toAbsolutePath());
    }
    a.addAll(trust.args());
    a.add("--cache-size=" + cacheSize);
    a.add("--readahead=" + readAhead);
    a.add("--readahead-size=" + readAheadSize);
    if (casync.given()) {
      a.add(casync.arg());
    }
    a.add("--read-timeout=" + readTimeout);
    if (allowOther) {
      a.add("--allow-other");
    }
    if (pageCache) {
      a.add("--page-cache");
    }
    if (restoreTo != null) {
      for (String t : restoreTo) {
        int eq = t.indexOf('=');
        a.add("--restore-to=" + (eq > 0 ? t.substring(0, eq + 1) + Path.of(t.substring(eq + 1)).toAbsolutePath()
            : Path.of(t).toAbsolutePath().toString()));
      }
    }
    if (overlay != null) {
      a.add("--overlay=" + overlay.toAbsolutePath());
    }
    if (restoreRate != null) {
      a.add("--restore-rate=" + restoreRate);
    }
    a.add("--");
    for (int i = 0; i < positional.size() - 1; i++) {
      a.add(positional.get(i));
    }
    a.add(Path.of(positional.get(positional.size() - 1)).toAbsolutePath().normalize().toString());
    return a;
  }
}
