package dev.thaw.cli;

import dev.thaw.image.ImageReader;
import java.time.Duration;
import picocli.CommandLine.Option;

/**
 * How images are read on demand ({@code mount}, {@code serve}): the chunk cache, sequential
 * read-ahead and the read timeout.
 */
final class ReadOptions {
  /**
   * Chunks a sequential stream reads ahead when it starts; its window doubles as it goes on, up to
   * {@code --readahead} (the kernel's own read-ahead ramps up the same way).
   */
  private static final int FIRST_WINDOW = 2;

  @Option(
      names = "--cache-size",
      paramLabel = "SIZE",
      defaultValue = "512M",
      description = "Memory for verified chunks (default: ${DEFAULT-VALUE}).")
  String cacheSize;

  @Option(
      names = "--readahead",
      paramLabel = "N",
      defaultValue = "16",
      description =
          "Chunks a sequential reader keeps fetched ahead once it has read on for a while (it starts"
              + " with 2 and doubles); 0 disables (default: ${DEFAULT-VALUE}).")
  int readAhead;

  @Option(
      names = "--readahead-size",
      paramLabel = "SIZE",
      defaultValue = "64M",
      description = {
        "...and at least this many bytes, so that small chunks (casync: 64 KiB) "
            + "keep enough fetches going (default: ${DEFAULT-VALUE})."
      })
  String readAheadSize;

  @Option(
      names = "--read-timeout",
      paramLabel = "SECONDS",
      defaultValue = "60",
      description =
          "A read waiting longer than this for the store fails with EIO (default: ${DEFAULT-VALUE}).")
  int readTimeout;

  /** The cache size in bytes, checked. */
  long cacheBytes() {
    long b = Units.parseSize(cacheSize);
    if (b < 16L << 20) {
      throw new IllegalArgumentException("--cache-size must be at least 16M");
    }
    if (readAhead < 0 || readAhead > 1024) {
      throw new IllegalArgumentException("--readahead must be between 0 and 1024");
    }
    return b;
  }

  /** How images are read: read-ahead in chunks and bytes, the read timeout. */
  ImageReader.Settings settings() {
    return new ImageReader.Settings(
        readAhead, Units.parseSize(readAheadSize), Duration.ofSeconds(readTimeout), FIRST_WINDOW);
  }
}
