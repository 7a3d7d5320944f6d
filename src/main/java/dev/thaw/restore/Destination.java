package dev.thaw.restore;

import dev.thaw.image.Image;
import dev.thaw.io.UserDirs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where a restore or live restore writes: its target and the state file that records which chunks
 * the target holds durably, opened together and locked for this restore alone (target first, then
 * state; {@link ExclusiveUse}). The callers decide what an existing state means (resume, or
 * refuse); {@link #abandon} undoes the open when they refuse, {@link #begin} starts a restore. Not
 * thread-safe; the target and state it holds follow their own rules.
 *
 * @param targetExisted whether the target was there before (a file thaw did not create)
 */
record Destination(
    RestoreTarget target, RestoreState state, boolean targetExisted, boolean scratchState)
    implements AutoCloseable {
  /**
   * Opens and locks {@code target} and {@code stateFile} for {@code image}, through {@code
   * channels}.
   */
  static Destination open(Path target, Path stateFile, Image image, Channels channels)
      throws IOException {
    return open(target, stateFile, image, channels, false);
  }

  /**
   * Opens {@code target} with a scratch state file, new in the user's state directory and deleted
   * when the destination closes (or fails to open), whatever happened: for a target that keeps
   * nothing a resume could skip, such as a character device.
   */
  static Destination openScratch(Path target, Image image, Channels channels) throws IOException {
    Path dir = UserDirs.state();
    Files.createDirectories(dir);
    Path stateFile = Files.createTempFile(dir, "restore-", Restorer.STATE_SUFFIX);
    try {
      return open(target, stateFile, image, channels, true);
    } catch (IOException | RuntimeException e) {
      Files.deleteIfExists(stateFile);
      throw e;
    }
  }

  private static Destination open(
      Path target, Path stateFile, Image image, Channels channels, boolean scratchState)
      throws IOException {
    boolean existed = Files.exists(target);
    RestoreTarget t = RestoreTarget.open(target, image.size(), channels);
    try {
      return new Destination(
          t,
          RestoreState.open(
              stateFile, image.index().checksum(), image.size(), image.chunkCount(), channels),
          existed,
          scratchState);
    } catch (IOException | RuntimeException e) {
      t.discard();
      throw e;
    }
  }

  /**
   * Gives the target the image's size and, for a restore that starts afresh, writes the state
   * file's first record (whether the target reads as zeros: a file this restore created does).
   */
  void begin() throws IOException {
    target.fitToImage();
    if (!state.resumed()) {
      state.setHolesAreZero(target.created());
      state.save(); // from now on an interruption is visible and resumable
    }
  }

  /** Lets both go unused: what this open created is removed, what was there is left alone. */
  void abandon() throws IOException {
    try {
      state.abandon();
    } finally {
      target.discard();
    }
  }

  @Override
  public void close() throws IOException {
    try {
      if (scratchState) {
        state.delete();
      } else {
        state.close();
      }
    } finally {
      target.close();
    }
  }
}
