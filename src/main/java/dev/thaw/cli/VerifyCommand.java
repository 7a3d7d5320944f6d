package dev.thaw.cli;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.image.Image;
import dev.thaw.image.Snapshot;
import dev.thaw.restore.Verifier;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.SnapshotPath;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
    name = "verify",
    mixinStandardHelpOptions = true,
    description = {
      "Fetch, decode and check every chunk of a snapshot, or of a casync image (--index).",
      "Lists bad or missing chunks on stdout; exit 1 if there are any. Archives it cannot check "
          + "(.didx file archives of container and host backups) are named on stderr and in the summary."
    })
final class VerifyCommand implements Callable<Integer> {
  @Mixin StoreOptions storeOptions;

  @Mixin KeyOptions key;

  @Mixin TrustOptions trust;

  @Mixin IndexOptions casync;

  @Spec CommandSpec spec;

  @Parameters(
      arity = "0..1",
      paramLabel = "SNAPSHOT",
      description = "TYPE/ID/TIME (not with --index)")
  List<String> args = List.of();

  @Override
  public Integer call() throws Exception {
    casync.checkArguments(spec, args, 0, 1, key);
    try (ChunkStore store = casync.openStore(storeOptions);
        FetchPipeline pipeline = storeOptions.pipeline(store)) {
      Verifier verifier;
      String what;
      if (casync.given()) {
        Image image = casync.open(storeOptions, pipeline);
        verifier = new Verifier(image, storeOptions.window(), IndexOptions.WINDOW_BYTES);
        what = image.name();
      } else {
        SnapshotPath path = SnapshotPath.parse(args.get(0));
        verifier =
            new Verifier(
                Snapshot.open(store, path, trust.policy(key.load())),
                pipeline,
                storeOptions.window());
        what = path.toString();
      }
      long t0 = System.nanoTime();
      Verifier.Report r = verifier.run();
      long dt = System.nanoTime() - t0;
      for (Verifier.Problem p : r.problems()) {
        if (p.digest() != null) {
          System.out.printf(
              "%s chunk %s in %s: %s%n",
              p.missing() ? "missing" : "bad", p.digest(), p.file(), p.message());
        } else {
          System.out.printf("bad file %s: %s%n", p.file(), p.message());
        }
      }
      for (Verifier.NotChecked n : r.notChecked()) {
        System.err.printf("not checked: %s: %s%n", n.file(), n.reason());
      }
      int skipped = r.notChecked().size();
      System.err.printf(
          "verified %s: %d distinct chunks, %s in %s (%s); %d problem(s)%s%n",
          what,
          r.chunks(),
          Units.bytes(r.bytes()),
          Units.seconds(dt),
          Units.rate(r.bytes(), dt),
          r.problems().size(),
          skipped == 0
              ? ""
              : "; "
                  + skipped
                  + " archive(s) NOT checked: "
                  + String.join(
                      ", ", r.notChecked().stream().map(Verifier.NotChecked::file).toList()));
      return r.problems().isEmpty() ? 0 : Main.FAILED;
    }
  }
}
