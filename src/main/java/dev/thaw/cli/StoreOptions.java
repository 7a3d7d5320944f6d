package dev.thaw.cli;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.RetryPolicy;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.Stores;
import picocli.CommandLine.Option;

/** {@code --store} and {@code --parallel}, shared by the commands that read a datastore. */
final class StoreOptions {
  @Option(names = "--store", required = true, paramLabel = "DS",
      description = "Datastore: a directory, file:///path, or http(s)://host/prefix.")
  String store;

  @Option(names = "--parallel", paramLabel = "N", defaultValue = "16",
      description = "Chunk fetches in flight (default: ${DEFAULT-VALUE}).")
  int parallel;

  ChunkStore open() {
    if (parallel < 1 || parallel > 256) {
      throw new IllegalArgumentException("--parallel must be between 1 and 256, not " + parallel);
    }
    return Stores.open(store, Stores.Options.defaults(parallel));
  }

  FetchPipeline pipeline(ChunkStore s) {
    return new FetchPipeline(s, parallel, Runtime.getRuntime().availableProcessors(), RetryPolicy.defaults());
  }

  /** Chunks a restore or verify keeps requested ahead of writing. */
  int window() {
    return parallel * 2 + Runtime.getRuntime().availableProcessors();
  }
}
