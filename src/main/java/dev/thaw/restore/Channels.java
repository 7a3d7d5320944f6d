package dev.thaw.restore;

import java.nio.channels.FileChannel;
import java.nio.file.Path;

/**
 * How a restore reaches the files it opens (its target and its state file): {@link #PLAIN} as they
 * are; tests pass a wrapper that records the order of writes and syncs, or fails them, to check
 * what a crash or a full disk would leave.
 */
@FunctionalInterface
interface Channels {
  Channels PLAIN = (path, channel) -> channel;

  /** The channel to use for {@code path}, opened as {@code channel}. */
  FileChannel wrap(Path path, FileChannel channel);
}
