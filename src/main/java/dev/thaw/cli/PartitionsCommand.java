package dev.thaw.cli;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.image.ChunkCache;
import dev.thaw.image.Image;
import dev.thaw.image.ImageReader;
import dev.thaw.image.Snapshot;
import dev.thaw.restore.ServeStatus;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.SnapshotPath;
import dev.thaw.volume.ImageVolumes;
import dev.thaw.volume.Volume;
import dev.thaw.volume.VolumeMap;
import dev.thaw.volume.VolumeReport;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
    name = "partitions",
    mixinStandardHelpOptions = true,
    description = {
      "List the partitions (MBR, GPT) and LVM logical volumes of a snapshot's "
          + "images, or of a casync image (--index): name, offset and size in the image, "
          + "type, GPT name, filesystem. Fetches only the chunks holding the tables and the "
          + "volumes' first blocks. Volumes that are not one range of the image (extended "
          + "partitions; striped, thin, raid or snapshot LVs; a volume group spread over "
          + "other images) are listed with the reason."
    })
final class PartitionsCommand implements Callable<Integer> {
  enum Output {
    text,
    json
  }

  @Mixin StoreOptions storeOptions;

  @Mixin KeyOptions key;

  @Mixin TrustOptions trust;

  @Mixin IndexOptions casync;

  @Spec CommandSpec spec;

  @Option(
      names = "--output",
      paramLabel = "FORMAT",
      defaultValue = "text",
      description = "text or json (default: ${DEFAULT-VALUE}).")
  Output output;

  @Parameters(
      arity = "0..2",
      paramLabel = "SNAPSHOT [ARCHIVE]",
      description = "TYPE/ID/TIME and an image archive (default: every image of the snapshot).")
  List<String> args = List.of();

  /** Enough for the chunks of the tables and volume heads; nothing is read twice anyway. */
  private static final long CACHE_BYTES = 64L << 20;

  @Override
  public Integer call() throws Exception {
    if (casync.given()) {
      casync.checkArguments(spec, args, 0, 0, key);
    } else if (args.isEmpty()) {
      throw new picocli.CommandLine.ParameterException(
          spec.commandLine(), "partitions --store DS expects SNAPSHOT [ARCHIVE]");
    }
    List<VolumeReport> docs = new ArrayList<>();
    try (ChunkStore store = casync.openStore(storeOptions);
        FetchPipeline pipeline = storeOptions.pipeline(store)) {
      List<Image> images = new ArrayList<>();
      if (casync.given()) {
        images.add(casync.open(storeOptions, pipeline));
      } else {
        Snapshot snap =
            Snapshot.open(store, SnapshotPath.parse(args.get(0)), trust.policy(key.load()));
        for (String archive : args.size() == 2 ? List.of(args.get(1)) : snap.images()) {
          images.add(snap.openImage(archive, pipeline));
        }
      }
      ChunkCache cache = new ChunkCache(CACHE_BYTES);
      ImageVolumes volumes = new ImageVolumes(w -> {}); // the listing shows each map's warnings
      for (Image image : images) {
        ImageReader reader =
            new ImageReader(image, cache, new ImageReader.Settings(0, 0, Duration.ofSeconds(60)));
        VolumeMap map = volumes.map(image.name(), reader);
        if (map.table().equals("unknown")) {
          throw new java.io.IOException(map.warnings().get(0));
        }
        if (output == Output.json) {
          docs.add(VolumeReport.of(image.name(), image.size(), map));
        } else {
          print(image, map);
        }
      }
    }
    if (output == Output.json) {
      System.out.println(ServeStatus.json(docs));
    }
    return 0;
  }

  private static void print(Image image, VolumeMap map) {
    System.out.printf(
        "%s: %s, %s partition table%s%n",
        image.name(),
        Units.bytes(image.size()),
        map.table().equals("none") ? "no" : map.table().toUpperCase(java.util.Locale.ROOT),
        map.filesystem().isEmpty() ? "" : "; the whole image holds " + map.filesystem());
    if (!map.volumes().isEmpty()) {
      System.out.printf(
          "  %-32s %14s %14s  %-22s %-11s %s%n",
          "NAME", "OFFSET", "SIZE", "TYPE", "FILESYSTEM", "LABEL");
    }
    for (Volume v : map.volumes()) {
      System.out.printf(
          "  %-32s %14s %14d  %-22s %-11s %s%s%n",
          v.name(),
          v.exposed() ? Long.toString(v.offset()) : "-",
          v.size(),
          v.type(),
          v.filesystem().isEmpty() ? "-" : v.filesystem(),
          v.label(),
          v.exposed()
              ? (v.extents().size() > 1 ? "  (" + v.extents().size() + " extents)" : "")
              : "  not exposed: " + v.notExposed());
    }
    for (String w : map.warnings()) {
      System.out.println("  warning: " + w);
    }
  }
}
