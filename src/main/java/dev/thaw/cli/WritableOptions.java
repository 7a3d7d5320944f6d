package dev.thaw.cli;

import dev.thaw.restore.LiveRestore;
import dev.thaw.restore.LiveRestores;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Option;

/**
 * {@code --restore-to}, {@code --overlay} and {@code --restore-rate}: writable images backed by
 * local targets ({@code mount}, {@code serve}).
 */
final class WritableOptions {
  @Option(
      names = "--restore-to",
      paramLabel = "DIR|ARCHIVE=PATH",
      description = {
        "Live restore: images become writable and are restored in the background "
            + "into DIR/ARCHIVE, or into PATH (a file or block device) for each ARCHIVE=PATH given.",
        "Reads and writes go on meanwhile; run the same command again to resume."
      })
  List<String> restoreTo;

  @Option(
      names = "--overlay",
      paramLabel = "DIR",
      description = "Writable, discardable view: changed chunks are kept in sparse files in DIR.")
  Path overlay;

  @Option(
      names = "--restore-rate",
      paramLabel = "BYTES/s",
      description = "Limit the background restore to this rate, e.g. 100M (default: no limit).")
  String restoreRate;

  /**
   * The targets, checked, or null when images stay read-only.
   *
   * @param hasSnapshot whether a snapshot was named (writable images need one)
   * @param parallel the fetches in flight ({@code --parallel}): the background restore keeps a few
   *     of them free, so that a guest's read never queues behind a full set of background fetches
   */
  LiveRestores.Targets targets(boolean hasSnapshot, int parallel) {
    if (restoreTo == null && overlay == null) {
      if (restoreRate != null) {
        throw new IllegalArgumentException("--restore-rate needs --restore-to");
      }
      return null;
    }
    if (restoreTo != null && overlay != null) {
      throw new IllegalArgumentException("give --restore-to or --overlay, not both");
    }
    if (!hasSnapshot) {
      throw new IllegalArgumentException("--restore-to and --overlay need a SNAPSHOT");
    }
    long rate = Units.parseRate(restoreRate);
    int window = Math.max(1, parallel - Math.max(2, parallel / 4));
    LiveRestore.Options live = new LiveRestore.Options(restoreTo != null, window, rate);
    Path dir = null;
    Map<String, Path> pairs = new LinkedHashMap<>();
    for (String t : restoreTo != null ? restoreTo : List.of(overlay.toString())) {
      int eq = t.indexOf('=');
      if (eq > 0 && restoreTo != null) {
        pairs.put(t.substring(0, eq), Path.of(t.substring(eq + 1)).toAbsolutePath().normalize());
      } else if (dir == null) {
        dir = Path.of(t).toAbsolutePath().normalize();
      } else {
        throw new IllegalArgumentException(
            "name one target directory; for several targets use ARCHIVE=PATH");
      }
    }
    if (dir != null && !Files.isDirectory(dir)) {
      throw new IllegalArgumentException(
          (restoreTo != null ? "--restore-to " : "--overlay ")
              + dir
              + " is not a directory (create it first, or give ARCHIVE=PATH)");
    }
    return new LiveRestores.Targets(dir, pairs, live);
  }
}
