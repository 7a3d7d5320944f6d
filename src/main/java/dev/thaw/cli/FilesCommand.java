package dev.thaw.cli;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.files.Entry;
import dev.thaw.files.FileSystemReader;
import dev.thaw.files.FilesException;
import dev.thaw.image.ChunkCache;
import dev.thaw.image.Image;
import dev.thaw.image.ImageReader;
import dev.thaw.image.Snapshot;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.SnapshotPath;
import dev.thaw.volume.ByteSource;
import dev.thaw.volume.Filesystems;
import dev.thaw.volume.ImageVolumes;
import dev.thaw.volume.Volume;
import dev.thaw.volume.VolumeMap;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code thaw files ls|cp}: lists or copies out of the filesystem in an image, partition or logical
 * volume of a backup ({@code --store DS SNAPSHOT VOLUME}, or {@code --index} for a casync image),
 * or in a volume file (a partition file of a mount), as any user, without mounting anything.
 * ext2/3/4, FAT and exFAT are read in-process through the image reader without read-ahead, so that
 * only the chunks holding the metadata on the path and the file's data are fetched; NTFS needs a
 * volume file for 7zz: a {@link PrivateMount} where this user may use FUSE, else the message says
 * how.
 */
@Command(
    name = "files",
    mixinStandardHelpOptions = true,
    description = {
      "List or copy files out of a filesystem inside a backup, without root and "
          + "without mounting: ext2/3/4, FAT and exFAT in-process (fetching only what the path "
          + "and the file need), NTFS with 7zz from a volume file. VOLUME is ARCHIVE (a filesystem "
          + "without a partition table), ARCHIVE.pN (a partition) or ARCHIVE.VG-LV (an LVM "
          + "logical volume), as 'thaw partitions' lists them. Without --store, VOLUME-FILE "
          + "is a partition file of a mount or a filesystem image."
    },
    subcommands = {FilesCommand.Ls.class, FilesCommand.Cp.class})
final class FilesCommand {
  private static final DateTimeFormatter TIME =
      DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm").withZone(ZoneOffset.UTC);

  /**
   * Chunks a copy touches at once (pieces in flight span at most two chunks each), and the
   * metadata's.
   */
  private static final long CACHE_BYTES = 256L << 20;

  /** What both commands share: where the volume comes from. */
  static class Source {
    @Mixin StoreOptions storeOptions;

    @Mixin KeyOptions key;

    @Mixin TrustOptions trust;

    @Mixin IndexOptions casync;

    @Spec CommandSpec spec;

    /**
     * Splits the positional arguments into the volume's own (SNAPSHOT VOLUME, VOLUME, or
     * VOLUME-FILE) and the rest, which must number between {@code min} and {@code max}.
     */
    List<String> rest(List<String> args, int min, int max, String usage) {
      if (!storeOptions.given() && casync.given()) {
        throw new ParameterException(
            spec.commandLine(), "--index needs --store (the casync chunk store)");
      }
      int own = !storeOptions.given() ? 1 : casync.given() ? 1 : 2;
      if (args.size() < own + min || args.size() > own + max) {
        String form =
            !storeOptions.given()
                ? "VOLUME-FILE"
                : casync.given()
                    ? "--store CASTR --index CAIBX VOLUME"
                    : "--store DS SNAPSHOT VOLUME";
        throw new ParameterException(
            spec.commandLine(), spec.qualifiedName() + " expects " + form + " " + usage);
      }
      return args.subList(own, args.size());
    }

    /** Opens the volume the arguments name and runs {@code work} on its filesystem. */
    void run(List<String> args, Work work) throws Exception {
      if (!storeOptions.given()) {
        try (FileSystemReader r = FileSystemReader.open(Path.of(args.get(0)))) {
          work.run(r);
        }
        return;
      }
      try (ChunkStore store = casync.openStore(storeOptions);
          FetchPipeline pipeline = storeOptions.pipeline(store)) {
        Image image;
        String volume;
        if (casync.given()) {
          image = casync.open(storeOptions, pipeline);
          volume = args.get(0);
        } else {
          Snapshot snap =
              Snapshot.open(store, SnapshotPath.parse(args.get(0)), trust.policy(key.load()));
          volume = args.get(1);
          image = snap.openImage(archiveOf(volume, snap.images()), pipeline);
        }
        // no read-ahead: a filesystem reader reads metadata and file pieces where it needs them
        ImageReader reader =
            new ImageReader(
                image,
                new ChunkCache(CACHE_BYTES),
                new ImageReader.Settings(0, 0, Duration.ofSeconds(60)));
        try (ImageReader.Handle h = reader.open()) {
          ByteSource whole = ByteSource.of(h, image.size());
          ByteSource source =
              volume.equals(image.name()) ? whole : volumeOf(volume, image, reader).open(whole);
          String fs = Filesystems.probe(source);
          if (!FileSystemReader.needsFile(fs)) {
            try (FileSystemReader r =
                FileSystemReader.open(volume, source, storeOptions.parallel)) {
              work.run(r);
            }
          } else if (PrivateMount
              .possible()) { // the tool reads the volume file of a mount of our own
            try (PrivateMount m = PrivateMount.open(image, pipeline);
                FileSystemReader r = FileSystemReader.withTool(m.file(volume), fs)) {
              work.run(r);
            }
          } else {
            throw new FilesException(
                volume
                    + " holds "
                    + fs
                    + ", which thaw reads with 7zz from a volume file, and this "
                    + "user cannot use FUSE (/dev/fuse) to make one; as root: thaw files ls --store ... "
                    + volume
                    + " PATH, or thaw mount the snapshot and run thaw files ls MOUNT/"
                    + volume
                    + " PATH");
          }
          int nonZero = 0;
          for (int i = 0; i < image.chunkCount(); i++) {
            nonZero += image.isZero(i) ? 0 : 1;
          }
          long fetched = pipeline.stats().fetched();
          System.err.printf(
              "thaw: fetched %d of the %d non-zero chunks of %s (%.1f%%), %s%n",
              fetched,
              nonZero,
              image.name(),
              100.0 * fetched / Math.max(1, nonZero),
              Units.bytes(pipeline.stats().bytesFetched()));
        }
      }
    }

    /** The archive a volume name belongs to: the longest image name it equals or extends. */
    private static String archiveOf(String volume, List<String> images) {
      String best = null;
      for (String i : images) {
        if ((volume.equals(i) || volume.startsWith(i + "."))
            && (best == null || i.length() > best.length())) {
          best = i;
        }
      }
      if (best == null) {
        throw new IllegalArgumentException(
            "no image of the snapshot is named "
                + volume
                + " or holds it; its images: "
                + String.join(", ", images));
      }
      return best;
    }

    private static Volume volumeOf(String name, Image image, ImageReader reader)
        throws IOException {
      List<String> warnings = new ArrayList<>();
      VolumeMap map = new ImageVolumes(warnings::add).map(image.name(), reader);
      Volume v = map.find(name).orElse(null);
      if (v == null) {
        throw new FilesException(
            image.name()
                + " has no volume "
                + name
                + "; it has: "
                + (map.exposed().isEmpty()
                    ? "none"
                    : String.join(", ", map.exposed().stream().map(Volume::name).toList()))
                + (warnings.isEmpty() ? "" : " (" + String.join("; ", warnings) + ")"));
      }
      if (!v.exposed()) {
        throw new FilesException(name + " cannot be read: " + v.notExposed());
      }
      return v;
    }
  }

  /** What a command does with the filesystem. */
  @FunctionalInterface
  interface Work {
    void run(FileSystemReader r) throws IOException;
  }

  @Command(
      name = "ls",
      mixinStandardHelpOptions = true,
      description = {
        "List a directory (or one file) of the filesystem in VOLUME.",
        "  thaw files ls --store DS SNAPSHOT VOLUME [PATH]",
        "  thaw files ls --store CASTR --index CAIBX VOLUME [PATH]",
        "  thaw files ls VOLUME-FILE [PATH]"
      })
  static final class Ls extends Source implements Callable<Integer> {
    @Parameters(
        paramLabel = "ARGS",
        description = "[SNAPSHOT] VOLUME [PATH], or VOLUME-FILE [PATH] (PATH: default /).")
    List<String> args = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
      List<String> rest = rest(args, 0, 1, "[PATH]");
      String path = rest.isEmpty() ? "/" : rest.get(0);
      run(
          args,
          r -> {
            for (Entry e : r.list(path)) {
              System.out.printf(
                  "%s %5s %5s %12d %16s %s%n",
                  mode(e),
                  e.uid() < 0 ? "-" : Long.toString(e.uid()),
                  e.gid() < 0 ? "-" : Long.toString(e.gid()),
                  e.size(),
                  e.modified() == null ? "-" : TIME.format(e.modified()),
                  e.name());
            }
            System.out.flush();
          });
      return 0;
    }
  }

  @Command(
      name = "cp",
      mixinStandardHelpOptions = true,
      description = {
        "Copy a file, symlink or directory tree out of the filesystem in VOLUME to "
            + "DEST (into it when it is a directory). Modes and times are kept where the "
            + "filesystem has them, ownership when run as root; nothing that exists is "
            + "overwritten.",
        "  thaw files cp --store DS SNAPSHOT VOLUME PATH DEST",
        "  thaw files cp --store CASTR --index CAIBX VOLUME PATH DEST",
        "  thaw files cp VOLUME-FILE PATH DEST"
      })
  static final class Cp extends Source implements Callable<Integer> {
    @Parameters(
        paramLabel = "ARGS",
        description = "[SNAPSHOT] VOLUME PATH DEST, or VOLUME-FILE PATH DEST.")
    List<String> args = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
      List<String> rest = rest(args, 2, 2, "PATH DEST");
      run(
          args,
          r -> {
            Path made = r.copy(rest.get(0), Path.of(rest.get(1)));
            System.err.println("thaw: copied " + rest.get(0) + " to " + made);
          });
      return 0;
    }
  }

  static String mode(Entry e) {
    char t =
        switch (e.kind()) {
          case DIRECTORY -> 'd';
          case SYMLINK -> 'l';
          case OTHER -> '?';
          default -> '-';
        };
    if (e.mode() < 0) {
      return t + "?????????";
    }
    StringBuilder s = new StringBuilder().append(t);
    String rwx = "rwxrwxrwx";
    for (int i = 0; i < 9; i++) {
      s.append((e.mode() & (0400 >> i)) != 0 ? rwx.charAt(i) : '-');
    }
    return s.toString();
  }
}
