package dev.thaw.cli;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.image.Snapshot;
import dev.thaw.restore.Verifier;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.SnapshotPath;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

@Command(name = "verify", mixinStandardHelpOptions = true,
    description = {"Fetch, decode and check every chunk of a snapshot.",
        "Lists bad or missing chunks on stdout; exit 1 if there are any."})
final class VerifyCommand implements Callable<Integer> {
  @Mixin
  StoreOptions storeOptions;

  @Mixin
  KeyOptions key;

  @Parameters(index = "0", paramLabel = "SNAPSHOT", description = "TYPE/ID/TIME")
  String snapshot;

  @Override
  public Integer call() throws Exception {
    SnapshotPath path = SnapshotPath.parse(snapshot);
    try (ChunkStore store = storeOptions.open(); FetchPipeline pipeline = storeOptions.pipeline(store)) {
      Snapshot snap = Snapshot.open(store, path, key.load());
      long t0 = System.nanoTime();
      Verifier.Report r = new Verifier(snap, pipeline, storeOptions.window()).run();
      long dt = System.nanoTime() - t0;
      for (Verifier.Problem p : r.problems()) {
        if (p.digest() != null) {
          System.out.printf("%s chunk %s in %s: %s%n", p.missing() ? "missing" : "bad", p.digest(), p.file(), p.message());
        } else {
          System.out.printf("bad file %s: %s%n", p.file(), p.message());
        }
      }
      System.err.printf("verified %s: %d distinct chunks, %s in %s (%s); %d problem(s)%n",
          path, r.chunks(), Units.bytes(r.bytes()), Units.seconds(dt), Units.rate(r.bytes(), dt),
          r.problems().size());
      return r.problems().isEmpty() ? 0 : Main.FAILED;
    }
  }
}
