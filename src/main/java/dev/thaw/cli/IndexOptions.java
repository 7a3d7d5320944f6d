package dev.thaw.cli;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.image.CasyncImage;
import dev.thaw.image.Image;
import dev.thaw.store.ChunkLayout;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.Stores;
import java.io.IOException;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * {@code --index}: read a casync image (a {@code .caibx} index, its chunks in the casync store that
 * {@code --store} names) instead of a snapshot of a datastore.
 */
final class IndexOptions {
  /** Bytes a restore or verify keeps requested, however small the chunks (casync: 64 KiB). */
  static final long WINDOW_BYTES = 64L << 20;

  @Option(
      names = "--index",
      paramLabel = "CAIBX",
      description = {
        "A casync image index (PATH or http(s) URL of NAME.caibx); --store is then "
            + "its casync chunk store (NAME.castr: a directory or http(s) URL)."
      })
  String index;

  boolean given() {
    return index != null;
  }

  /**
   * Checks the positional arguments: {@code withIndex} of them with {@code --index}, else {@code
   * without}; a usage error (exit 2) otherwise.
   */
  void checkArguments(
      CommandLine.Model.CommandSpec spec,
      List<String> args,
      int withIndex,
      int without,
      KeyOptions key) {
    int want = given() ? withIndex : without;
    if (args.size() != want) {
      String usage =
          spec.commandLine().getCommandName()
              + " "
              + (given() ? "--index CAIBX --store CASTR" : "--store DS")
              + " expects "
              + want
              + " argument(s), not "
              + args.size()
              + ": "
              + String.join(" ", args);
      throw new CommandLine.ParameterException(spec.commandLine(), usage);
    }
    if (given() && key.keyfile != null) {
      throw new CommandLine.ParameterException(
          spec.commandLine(),
          "casync images are not encrypted: --keyfile does not apply with --index");
    }
  }

  /**
   * Opens the store(s) of {@code --store}: casync chunk stores with {@code --index}, else
   * datastores.
   */
  ChunkStore openStore(StoreOptions storeOptions) throws IOException {
    return given() ? storeOptions.open(ChunkLayout.CASYNC) : storeOptions.open();
  }

  /** Reads and checks the index and binds it to {@code pipeline} (whose store is casync's). */
  Image open(StoreOptions storeOptions, FetchPipeline pipeline) throws IOException {
    Stores.Fetched f = storeOptions.readFile(index, "index");
    return CasyncImage.open(f.location(), f.bytes(), pipeline);
  }

  /** The option for a child process: a local path made absolute. */
  String arg() {
    boolean url = index.toLowerCase(Locale.ROOT).matches("^[a-z][a-z0-9+.-]*:.*");
    return "--index=" + (url ? index : java.nio.file.Path.of(index).toAbsolutePath());
  }
}
