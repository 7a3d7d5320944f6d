package dev.thaw.restore;

import dev.thaw.fetch.Chunk;
import dev.thaw.fetch.Futures;
import dev.thaw.fetch.Priority;
import dev.thaw.image.Image;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Restores one image to a file or block device. Chunks are requested from the fetch pipeline at
 * background priority, at most {@code window} at a time, and written out of order at their offsets
 * by the calling thread as they arrive. Zero chunks are never fetched: a file thaw creates keeps
 * them as holes; an existing file or device gets zeros written unless the caller promises it is
 * zeroed already.
 *
 * <p>Progress is kept in a state file beside the target: every few seconds the target is synced and
 * then the chunks written before that sync began are recorded, so a resumed restore never trusts
 * data that was not durable. The sync runs on a thread of its own ({@link Checkpoints}) while the
 * restore goes on fetching and writing, so a slow disk and the network work at the same time. On
 * failure or {@link #cancel()} the state is saved and kept for {@code --resume}; on success it is
 * deleted. A character device (/dev/null) keeps nothing a resume could skip: its state file is a
 * scratch one, deleted when the restore ends, and {@code --resume} is refused.
 *
 * <p>{@link #run()} is called once, from one thread; {@link #progress()} and {@link #cancel()} may
 * be called from any thread.
 */
public final class Restorer {
  /** Suffix of the state file kept beside a regular-file target. */
  public static final String STATE_SUFFIX = ".thaw-state";

  /**
   * How a restore runs.
   *
   * @param resume continue from an existing state file
   * @param targetIsZero the target reads as zeros already: skip writing zero chunks
   * @param window chunks requested but not yet written: at least this many are kept requested
   * @param windowBytes and at least this many bytes (small chunks must not starve the fetches); the
   *     window is the smallest that satisfies both
   * @param stateFile where to keep progress; null for the default beside the target
   */
  public record Options(
      boolean resume, boolean targetIsZero, int window, long windowBytes, Path stateFile) {}

  /** A progress snapshot; byte counts are of image data. */
  public record Progress(
      long totalBytes, long doneBytes, long zeroBytes, long fetchedBytes, long elapsedNanos) {}

  /** What a finished restore did. */
  public record Result(
      long size, int fetched, int zero, int alreadyDone, long fetchedBytes, long elapsedNanos) {}

  private final Image image;
  private final Path target;
  private final Options options;
  private final Channels channels;
  private final long checkpointNanos;
  private final AtomicLong doneBytes = new AtomicLong();
  private final AtomicLong zeroBytes = new AtomicLong();
  private final AtomicLong fetchedBytes = new AtomicLong();
  private volatile long startNanos = System.nanoTime();
  private volatile boolean cancelled;

  public Restorer(Image image, Path target, Options options) {
    this(image, target, options, Channels.PLAIN);
  }

  Restorer(Image image, Path target, Options options, Channels channels) {
    this(image, target, options, channels, RestoreState.CHECKPOINT_NANOS);
  }

  /** With checkpoints every {@code checkpointNanos} instead of every few seconds (tests). */
  Restorer(Image image, Path target, Options options, Channels channels, long checkpointNanos) {
    this.image = image;
    this.target = target;
    this.options = options;
    this.channels = channels;
    this.checkpointNanos = checkpointNanos;
  }

  /**
   * The state file used for {@code target} when none is named: beside a file; for a device (whose
   * directory, /dev, is no place for files) in {@code $XDG_STATE_HOME/thaw}, by default {@code
   * $HOME/.local/state/thaw}.
   */
  public static Path defaultStateFile(Path target) {
    Path abs = target.toAbsolutePath().normalize();
    if (Files.exists(abs) && !Files.isRegularFile(abs)) {
      return dev.thaw.io.UserDirs.state()
          .resolve(abs.toString().substring(1).replace('/', '_') + STATE_SUFFIX);
    }
    return abs.resolveSibling(abs.getFileName() + STATE_SUFFIX);
  }

  /**
   * Asks a running restore to stop: it returns within a fraction of a second, without waiting for
   * chunks still being fetched, its state as of the last checkpoint (at most a few seconds old)
   * kept for {@code --resume}.
   */
  public void cancel() {
    cancelled = true;
  }

  public Progress progress() {
    return new Progress(
        image.size(),
        doneBytes.get(),
        zeroBytes.get(),
        fetchedBytes.get(),
        System.nanoTime() - startNanos);
  }

  /**
   * Runs the restore.
   *
   * @throws IOException with a message naming the chunk, store location or target at fault
   */
  public Result run() throws IOException, InterruptedException {
    startNanos = System.nanoTime();
    Path parent = target.toAbsolutePath().getParent();
    if (parent != null && !Files.isDirectory(parent)) {
      throw new IOException(
          "cannot create target " + target + ": directory " + parent + " does not exist");
    }
    Path stateFile = options.stateFile() != null ? options.stateFile() : defaultStateFile(target);
    // a character device (/dev/null, a pipe's device) keeps nothing a resume could skip: its state
    // file is a scratch one, gone when the restore ends, whatever happened
    boolean scratch = options.stateFile() == null && RestoreTarget.isCharacterDevice(target);
    if (scratch && options.resume()) {
      throw new IOException(
          "a restore into "
              + target
              + " (a character device) keeps no progress to resume; run it without --resume");
    }
    // target and state stay locked until the restore ends: a second restore into either is
    // refused while this one runs
    Destination d =
        scratch
            ? Destination.openScratch(target, image, channels)
            : Destination.open(target, stateFile, image, channels);
    try (d) {
      try {
        if (d.state().resumed() && !options.resume()) {
          throw new IOException(
              "an interrupted restore into "
                  + target
                  + " left "
                  + stateFile
                  + ": run the same command with --resume to continue it, or delete that file to start over");
        }
        if (d.state().resumed() && !d.targetExisted()) {
          throw new IOException(
              "cannot resume: "
                  + stateFile
                  + " exists but the target "
                  + target
                  + " is gone; delete the state file to start over");
        }
        d.begin();
      } catch (IOException | RuntimeException e) {
        d.abandon();
        throw e;
      }
      // a file this restore created (now or before an interruption) keeps its zero chunks as holes
      boolean writeZeros = !d.state().holesAreZero() && !options.targetIsZero();
      return copy(d.target(), d.state(), writeZeros, d.scratchState());
    }
  }

  private record Arrival(int index, Chunk chunk, Throwable error) {}

  private Result copy(
      RestoreTarget out, RestoreState state, boolean writeZeros, boolean scratchState)
      throws IOException, InterruptedException {
    int n = image.chunkCount();
    Window window = new Window(options.window(), options.windowBytes());
    BlockingQueue<Arrival> arrivals = new LinkedBlockingQueue<>();
    int next = 0;
    int fetched = 0;
    int zero = 0;
    int alreadyDone = 0;
    IOException failure = null;
    boolean writeFailed = false;
    long lastCheckpoint = System.nanoTime();
    long unsynced = 0; // bytes written since the last checkpoint began
    Checkpoints checkpoints = new Checkpoints(out, state);
    try {
      while (true) {
        while (failure == null && !cancelled && next < n && window.hasRoom()) {
          int i = next++;
          int len = image.index().length(i);
          if (state.isPresent(i)) {
            alreadyDone++;
            doneBytes.addAndGet(len);
          } else if (image.isZero(i)) {
            if (writeZeros) {
              try {
                out.writeZeros(image.index().start(i), len);
                unsynced += len;
              } catch (IOException e) {
                writeFailed = true;
                failure = writeFailure(i, e);
                break;
              }
            }
            state.markPresent(i);
            zero++;
            zeroBytes.addAndGet(len);
            doneBytes.addAndGet(len);
          } else {
            window.requested(len);
            final int idx = i;
            // the arrival carries the failure, if any: the returned future adds nothing
            var unused =
                image
                    .chunk(i, Priority.BACKGROUND)
                    .whenComplete((c, e) -> arrivals.add(new Arrival(idx, c, e)));
          }
        }
        if (window.outstanding() == 0 || cancelled) {
          // cancelled: chunks still on their way are dropped, not awaited (a trickling or stuck
          // fetch would hold the stop for as long as it takes)
          break;
        }
        Arrival a = arrivals.poll(100, TimeUnit.MILLISECONDS);
        if (a != null) {
          window.received(image.index().length(a.index()));
          if (a.error() != null) {
            if (failure == null) {
              failure = Futures.asIOException(a.error());
            }
          } else if (!writeFailed) {
            // a good chunk is written even after another failed: a resume need not fetch it again
            Chunk c = a.chunk();
            try {
              out.write(image.index().start(a.index()), c.data(), c.offset(), c.length());
              unsynced += c.length();
              state.markPresent(a.index());
              fetched++;
              fetchedBytes.addAndGet(c.length());
              doneBytes.addAndGet(c.length());
            } catch (IOException e) {
              writeFailed = true;
              if (failure == null) {
                failure = writeFailure(a.index(), e);
              }
            } finally {
              c.release(); // written (or not to be): its array takes the next chunk
            }
          } else {
            a.chunk().release(); // the target failed: not written
          }
        }
        IOException synced = checkpoints.poll();
        if (synced != null && failure == null) {
          writeFailed = true; // the target cannot make its data durable: stop writing to it
          failure = synced;
        }
        // every few seconds, and whenever enough was written since the last one began: the disk
        // then writes while the network delivers, and the sync at the end finds little to do
        boolean due =
            System.nanoTime() - lastCheckpoint > checkpointNanos
                || (unsynced >= RestoreState.CHECKPOINT_BYTES && out.syncs());
        if (due && !writeFailed && !checkpoints.running()) {
          checkpoints.start(); // the sync runs beside the writes that follow
          lastCheckpoint = System.nanoTime();
          unsynced = 0;
        }
      }
    } finally {
      // no checkpoint outlives the loop: the state file is the restoring thread's again
      IOException synced = checkpoints.finish();
      if (synced != null && failure == null) {
        writeFailed = true;
        failure = synced;
      }
    }
    if (failure != null) {
      try {
        checkpoint(out, state);
      } catch (IOException e) {
        // the data may not be durable: keep the previous state, which is still true
      }
    }
    boolean complete = failure == null && window.outstanding() == 0 && next >= n;
    if (!complete) {
      // a cancelled restore does not sync the target (that can take long with much written):
      // the state saved at the last checkpoint is still true, and a resume refetches the rest
      String then =
          scratchState
              ? "; a character device keeps no progress: run the restore again"
              : "; progress kept in " + state.file() + ", run again with --resume to continue";
      if (failure != null) {
        throw new IOException(failure.getMessage() + then, failure);
      }
      throw new IOException("restore interrupted" + then);
    }
    out.sync();
    state.delete();
    return new Result(
        image.size(),
        fetched,
        zero,
        alreadyDone,
        fetchedBytes.get(),
        System.nanoTime() - startNanos);
  }

  private static void checkpoint(RestoreTarget out, RestoreState state) throws IOException {
    out.sync();
    state.save();
  }

  private IOException writeFailure(int chunk, IOException e) {
    String reason =
        e.getMessage() != null && e.getMessage().contains("No space left")
            ? "no space left on the device"
            : String.valueOf(e.getMessage());
    return new IOException(
        "cannot write chunk "
            + chunk
            + " to "
            + target
            + " at offset "
            + image.index().start(chunk)
            + ": "
            + reason,
        e);
  }
}
