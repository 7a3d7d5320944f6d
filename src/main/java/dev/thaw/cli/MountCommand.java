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

  @Mixin
  ReadOptions read;

  @Option(names = "--page-cache",
      description = {"Read-only images go through the kernel's page cache (for programs that",
          "mmap them shared) instead of direct I/O through thaw's cache."})
  boolean pageCache;

  @Mixin
  WritableOptions writable;

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
    long cacheBytes = read.cacheBytes();
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
    LiveRestores.Targets targets = writable.targets(snapshot != null, storeOptions.parallel);
    CryptConfig k = key.load(); // fail here, in the user's terminal, on a wrong passphrase
    if (!foreground) {
      return spawn(mountpoint, cacheBytes);
    }
    Mounter.Options o = new Mounter.Options(cacheBytes,
        read.settings(), allowOther, targets, pageCache);
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
    // The cached chunks live long in pooled arrays (old generation); everything else is small
    // and dies young. A small young generation leaves the old one room for the cache (and is
    // resident memory only: 96 MiB measured 60 MiB more peak RSS than 32 MiB, same CPU), and a
    // serial collector on two cores or fewer leaves the cores to the decoders (measured: a cold
    // dd through a mount spent 2-3 s of 8 s in G1's marking, and more in parallel GC threads).
    cmd.add(Runtime.getRuntime().availableProcessors() <= 2 ? "-XX:+UseSerialGC" : "-XX:+UseParallelGC");
    cmd.add("-Xmn32m");
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
    a.addAll(read.args());
    if (casync.given()) {
      a.add(casync.arg());
    }
    if (allowOther) {
      a.add("--allow-other");
    }
    if (pageCache) {
      a.add("--page-cache");
    }
    a.addAll(writable.args());
    a.add("--");
    for (int i = 0; i < positional.size() - 1; i++) {
      a.add(positional.get(i));
    }
    a.add(Path.of(positional.get(positional.size() - 1)).toAbsolutePath().normalize().toString());
    return a;
  }
}
