package dev.thaw.cli;

import dev.thaw.crypto.CryptConfig;
import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fuse.Mounter;
import dev.thaw.restore.LiveRestores;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.SnapshotPath;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
    name = "mount",
    mixinStandardHelpOptions = true,
    description = {
      "Mount backups read-only with FUSE; chunks are fetched when first read.",
      "With SNAPSHOT: MOUNTPOINT/<archive> for each image. Without: MOUNTPOINT/<type>/<id>/<time>/<archive>.",
      "With --index NAME.caibx (and --store NAME.castr): MOUNTPOINT/NAME.",
      "MOUNTPOINT/.thaw/status reports cache, fetch and read-ahead statistics (JSON).",
      "Through the launcher, returns once the mount answers: the mount then runs in the "
          + "background until 'thaw unmount MOUNTPOINT' (or fusermount -u). --foreground keeps it "
          + "in this terminal."
    })
final class MountCommand implements Callable<Integer> {
  /**
   * jnr-fuse's binding, started when thaw was asked to mount, before the command line is even
   * parsed ({@link Main}), or null for a command built only for help (then {@link #call} starts
   * it).
   */
  private final Mounter.Binding early;

  MountCommand() {
    this(null);
  }

  MountCommand(Mounter.Binding early) {
    this.early = early;
  }

  @Mixin StoreOptions storeOptions;

  @Mixin KeyOptions key;

  @Mixin TrustOptions trust;

  @Mixin IndexOptions casync;

  @Spec CommandSpec spec;

  @Mixin ReadOptions read;

  @Option(
      names = "--page-cache",
      description = {
        "Read-only images go through the kernel's page cache (for programs that "
            + "mmap them shared, or read a few KiB at a time) instead of direct I/O through"
            + " thaw's cache. Partition and volume files always do."
      })
  boolean pageCache;

  @Mixin WritableOptions writable;

  @Option(names = "--foreground", description = "Serve in this process until unmounted.")
  boolean foreground;

  @Option(names = "--allow-other", description = "Let other users read the mount.")
  boolean allowOther;

  @Option(
      names = "--log",
      paramLabel = "FILE",
      description = {
        "Log of the mount once it runs in the background (default: $XDG_STATE_HOME/thaw, "
            + "else ~/.local/state/thaw, mount-<mountpoint>.log)."
      })
  Path logFile;

  @Option(
      names = "--ready-fd",
      hidden = true,
      paramLabel = "FD",
      description =
          "Set by the launcher: tell it on FD once the mount answers, then let go of the terminal.")
  Integer readyFd;

  @Option(
      names = "--rehearse",
      hidden = true,
      description = {
        "Open all a mount of SNAPSHOT serves and read the start of each image through the "
            + "FUSE callbacks, but mount nothing (the launcher's start-up training)."
      })
  boolean rehearse;

  @Parameters(
      arity = "1..2",
      paramLabel = "[SNAPSHOT] MOUNTPOINT",
      description = "Snapshot (TYPE/ID/TIME) to show, and the directory to mount on.")
  List<String> positional;

  @Override
  public Integer call() throws Exception {
    Mounter.Binding binding = early != null ? early : Mounter.bind();
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
      throw new IllegalArgumentException(
          mountpoint + " is a thaw mount already; 'thaw unmount " + mountpoint + "' first");
    }
    LiveRestores.Targets targets = writable.targets(snapshot != null, storeOptions.parallel);
    boolean detach = readyFd != null && !foreground;
    Path log =
        detach
            ? (logFile != null ? logFile.toAbsolutePath() : MountLog.defaultFor(mountpoint))
            : null;
    if (log != null) {
      MountLog.create(log); // here, where a refusal (a planted link) still reaches the user
    }
    CryptConfig k = key.load(); // a wrong passphrase fails here, in the user's terminal
    Mounter.Options o =
        new Mounter.Options(cacheBytes, read.settings(), allowOther, targets, pageCache);
    try (ChunkStore store = casync.openStore(storeOptions);
        FetchPipeline pipeline = storeOptions.pipeline(store)) {
      String what =
          casync.given() ? casync.index : snapshot != null ? snapshot.toString() : store.describe();
      Runnable ready =
          () -> {
            if (!detach) {
              System.err.println("thaw: mounted " + what + " at " + mountpoint);
              System.err.flush();
              return;
            }
            System.err.println(
                "thaw: mounted "
                    + what
                    + " at "
                    + mountpoint
                    + " (pid "
                    + ProcessHandle.current().pid()
                    + ", log "
                    + log
                    + ")");
            System.err.println("thaw: end it with: thaw unmount " + mountpoint);
            try {
              Detach.detach(readyFd, log);
              Detach.log(
                  System.err,
                  java.time.Instant.now() + " thaw: mounted " + what + " at " + mountpoint);
            } catch (IOException e) {
              throw new java.io.UncheckedIOException(e);
            }
          };
      if (rehearse) {
        if (snapshot == null || casync.given() || targets != null) {
          throw new IllegalArgumentException("--rehearse takes a read-only SNAPSHOT");
        }
        Mounter.rehearse(binding, store, pipeline, trust.policy(k), snapshot, o, 1 << 20);
        return 0;
      }
      if (casync.given()) {
        Mounter.run(
            binding,
            List.of(casync.open(storeOptions, pipeline)),
            pipeline,
            mountpoint,
            o,
            System.err,
            ready);
      } else if (snapshot != null) {
        Mounter.run(
            binding, store, pipeline, trust.policy(k), snapshot, mountpoint, o, System.err, ready);
      } else {
        Mounter.run(binding, store, pipeline, trust.policy(k), mountpoint, o, System.err, ready);
      }
    }
    System.err.println("thaw: unmounted " + mountpoint);
    return 0;
  }
}
