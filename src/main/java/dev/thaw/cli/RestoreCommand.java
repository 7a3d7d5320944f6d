package dev.thaw.cli;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.PipelineStats;
import dev.thaw.image.Image;
import dev.thaw.image.Snapshot;
import dev.thaw.restore.Restorer;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.SnapshotPath;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
    name = "restore",
    mixinStandardHelpOptions = true,
    description = {
      "Restore an image of a snapshot, or a casync image (--index), to a file or block device.",
      "Chunks are fetched in parallel and written out of order; zero chunks are not fetched."
    })
final class RestoreCommand implements Callable<Integer> {
  @Mixin StoreOptions storeOptions;

  @Mixin KeyOptions key;

  @Mixin TrustOptions trust;

  @Mixin IndexOptions casync;

  @Spec CommandSpec spec;

  @Option(names = "--resume", description = "Continue an interrupted restore from its state file.")
  boolean resume;

  @Option(
      names = "--target-is-zero",
      description = "The target already reads as zeros: do not write zero chunks to it.")
  boolean targetIsZero;

  @Option(
      names = "--state-file",
      paramLabel = "FILE",
      description =
          "Where to keep progress (default: TARGET.thaw-state; for block devices under"
              + " ~/.local/state/thaw; a character device such as /dev/null keeps none).")
  Path stateFile;

  @Option(
      names = "--progress",
      paramLabel = "MODE",
      defaultValue = "auto",
      description = "auto, tty, plain or none (default: ${DEFAULT-VALUE}).")
  String progress;

  @Parameters(
      arity = "1..3",
      paramLabel = "[SNAPSHOT ARCHIVE] TARGET",
      description = {
        "Snapshot (TYPE/ID/TIME) and image archive (e.g. drive-scsi0.img), not with --index; "
            + "the target: a file (new or existing) or a block device."
      })
  List<String> args;

  @Override
  public Integer call() throws Exception {
    ProgressPrinter.Mode mode =
        ProgressPrinter.Mode.valueOf(progress.toUpperCase(java.util.Locale.ROOT));
    casync.checkArguments(spec, args, 1, 3, key);
    Path target = Path.of(args.get(args.size() - 1));
    try (ChunkStore store = casync.openStore(storeOptions);
        FetchPipeline pipeline = storeOptions.pipeline(store)) {
      Image image =
          casync.given()
              ? casync.open(storeOptions, pipeline)
              : Snapshot.open(store, SnapshotPath.parse(args.get(0)), trust.policy(key.load()))
                  .openImage(args.get(1), pipeline);
      Restorer restorer =
          new Restorer(
              image,
              target,
              new Restorer.Options(
                  resume,
                  targetIsZero,
                  storeOptions.window(),
                  IndexOptions.WINDOW_BYTES,
                  stateFile));
      ProgressPrinter progressPrinter =
          new ProgressPrinter(
              mode,
              "restore " + image.name(),
              () -> {
                Restorer.Progress pr = restorer.progress();
                return new ProgressPrinter.Sample(
                    pr.totalBytes(), pr.doneBytes(), pr.zeroBytes(), pr.elapsedNanos());
              },
              System.err);
      CountDownLatch finished = new CountDownLatch(1);
      Thread hook =
          new Thread(
              () -> {
                if (finished.getCount() == 0) {
                  return; // the restore ended already (it failed, and the JVM exits)
                }
                // SIGINT/SIGTERM: stop at once (chunks on their way are not awaited), keep the
                // state
                progressPrinter.close();
                System.err.println("thaw: stopping; progress is kept for --resume");
                System.err.flush();
                restorer.cancel();
                try {
                  finished.await(30, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                }
              });
      Runtime.getRuntime().addShutdownHook(hook);
      Restorer.Result r;
      try {
        r = restorer.run();
      } finally {
        progressPrinter.close();
        finished.countDown();
        try {
          Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
          // shutting down already
        }
      }
      PipelineStats st = pipeline.stats();
      System.err.printf(
          "restored %s to %s: %s in %s (%s); chunks: %d fetched, %d zero, %d already done;"
              + " %s read from the store, %d retries%n",
          image.name(),
          target,
          Units.bytes(r.size()),
          Units.seconds(r.elapsedNanos()),
          Units.rate(r.size(), r.elapsedNanos()),
          r.fetched(),
          r.zero(),
          r.alreadyDone(),
          Units.bytes(st.bytesFetched()),
          st.retries());
    }
    return 0;
  }
}
