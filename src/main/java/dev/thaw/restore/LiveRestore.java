package dev.thaw.restore;

import dev.thaw.fetch.Chunk;
import dev.thaw.fetch.Futures;
import dev.thaw.fetch.Priority;
import dev.thaw.format.ChunkIndex;
import dev.thaw.image.Image;
import dev.thaw.image.ImageReader;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A writable image over a backup: the image's chunks move into a local target (a file or block
 * device) one by one, while reads and writes go on. Used for a live restore (a background thread
 * restores every chunk at background priority) and for an overlay (only chunks the guest writes
 * move into a sparse file; the backup stays the source of the rest).
 *
 * <p>Reads of a chunk present in the target come from the target, others from the backup through
 * the image's {@link ImageReader}. A write into a chunk not yet present first completes the chunk
 * in the target (fetched, or nothing to fetch when the write covers it whole), then applies the
 * write. A write returns only once the chunk it lands in is durably recorded as present in the
 * state file, so that a restart never fetches that chunk again over the write. {@link #flush()}
 * (the guest's fsync) makes the target and the state durable.
 *
 * <p>The state file is a {@code restore} state file (the same format as {@code thaw restore
 * --resume} uses): after a crash or SIGKILL, opening the same target and state again resumes with
 * every recorded chunk kept. A state file of another image is refused.
 *
 * <p>Thread-safe: FUSE or NBD threads call {@link #read}, {@link #write}, {@link #writeZeros},
 * {@link #discard} and {@link #flush} concurrently; a per-chunk lock (striped) orders the moves of
 * one chunk into the target, and is held only for target writes: a chunk's old bytes are fetched
 * before the lock is taken, so no thread waits for the store under it. {@link #flush} covers every
 * write that returned before it, whichever thread made it; it and the background's checkpoints
 * share one monitor, taken after no chunk lock.
 */
public final class LiveRestore implements AutoCloseable {
  private static final int LOCK_STRIPES = 256;
  private static final long DEMAND_QUIET_NANOS = TimeUnit.SECONDS.toNanos(1);

  /**
   * What moves into the target, and how fast.
   *
   * @param background restore every chunk in the background (live restore); false for an overlay
   * @param window background fetches outstanding at most; below the pipeline's parallelism, so that
   *     demand reads always find a free fetch thread
   * @param rateLimit background restore bytes per second, 0 for no limit
   */
  public record Options(boolean background, int window, long rateLimit) {}

  /** Progress of the move into the target. */
  public record Progress(
      int chunks,
      int present,
      long bytesPresent,
      long size,
      long backgroundBytes,
      long backgroundNanos,
      boolean complete,
      boolean background,
      long guestWrites,
      String error) {
    /** Background restore rate in bytes per second so far. */
    public double rate() {
      return backgroundNanos <= 0 ? 0 : backgroundBytes * 1e9 / backgroundNanos;
    }
  }

  private final Image image;
  private final ImageReader reader;
  private final RestoreTarget target;
  private final RestoreState state;
  private final Options options;
  private final ChunkIndex index;
  private final AtomicLongArray present;

  /** Chunks recorded as present in the state file (a subset of {@link #present}). */
  private final AtomicLongArray recorded;

  private final AtomicInteger presentCount = new AtomicInteger();
  private final AtomicLong presentBytes = new AtomicLong();
  private final ReentrantLock[] locks = new ReentrantLock[LOCK_STRIPES];

  /** Per reading thread: reads from the target go through it, so a read makes no garbage. */
  private final ThreadLocal<byte[]> readBuffer = ThreadLocal.withInitial(() -> new byte[128 << 10]);

  private final Object durability = new Object();
  private final AtomicInteger demandWaiting = new AtomicInteger();

  /**
   * When a guest read last needed the store: the background restore holds back for a while after.
   */
  private volatile long lastDemandNanos = System.nanoTime() - TimeUnit.MINUTES.toNanos(1);

  private final AtomicLong backgroundBytes = new AtomicLong();
  private final AtomicLong guestWrites = new AtomicLong();
  private final boolean holesAreZero;
  private volatile long backgroundStart;
  private volatile long backgroundEnd;
  private volatile String error;
  private volatile boolean closed;
  private Thread worker;

  private LiveRestore(
      Image image, ImageReader reader, RestoreTarget target, RestoreState state, Options options) {
    this.image = image;
    this.reader = reader;
    this.target = target;
    this.state = state;
    this.options = options;
    this.index = image.index();
    this.present = new AtomicLongArray((index.chunkCount() + 63) / 64);
    this.recorded = new AtomicLongArray(present.length());
    this.holesAreZero = state.holesAreZero();
    for (int i = 0; i < locks.length; i++) {
      locks[i] = new ReentrantLock();
    }
    for (int i = 0; i < index.chunkCount(); i++) {
      if (state.isPresent(i)) {
        setPresent(i);
        setBit(recorded, i);
      }
    }
  }

  /**
   * Opens (or resumes) the move of {@code reader}'s image into {@code targetPath}, keeping the
   * state in {@code stateFile}. A new target file is created sparse; an existing target with no
   * state file is refused (it may hold anything), as is a state file of another image. The
   * background restore begins with {@link #start()}.
   */
  public static LiveRestore open(
      ImageReader reader, Path targetPath, Path stateFile, Options options) throws IOException {
    return open(reader, targetPath, stateFile, options, Channels.PLAIN);
  }

  /** {@link #open(ImageReader, Path, Path, Options)} through {@code channels}. */
  static LiveRestore open(
      ImageReader reader, Path targetPath, Path stateFile, Options options, Channels channels)
      throws IOException {
    Image image = reader.image();
    boolean regular = java.nio.file.Files.isRegularFile(targetPath);
    // target and state stay locked for the life of this live restore: a second live restore or
    // restore into either is refused while this one runs
    Destination d = Destination.open(targetPath, stateFile, image, channels);
    try {
      if (!d.state().resumed() && d.targetExisted() && regular) {
        throw new IOException(
            "target "
                + targetPath
                + " exists but has no state file "
                + stateFile
                + "; refusing to treat its contents as restored. Remove it, or name a new target.");
      }
      if (d.state().resumed() && !d.targetExisted()) {
        throw new IOException(
            "state file "
                + stateFile
                + " exists but its target "
                + targetPath
                + " does not; delete the state file to start over");
      }
      d.begin();
    } catch (IOException | RuntimeException e) {
      d.abandon();
      throw e;
    }
    return new LiveRestore(image, reader, d.target(), d.state(), options);
  }

  /** Whether chunk {@code i} is in the target (reads of it come from there). */
  public boolean isPresent(int i) {
    return (present.get(i >>> 6) & (1L << (i & 63))) != 0;
  }

  private boolean isRecorded(int i) {
    return (recorded.get(i >>> 6) & (1L << (i & 63))) != 0;
  }

  private static void setBit(AtomicLongArray bits, int i) {
    long bit = 1L << (i & 63);
    bits.getAndUpdate(i >>> 6, w -> w | bit);
  }

  private void setPresent(int i) {
    long bit = 1L << (i & 63);
    long old = present.getAndUpdate(i >>> 6, w -> w | bit);
    if ((old & bit) == 0) {
      presentCount.incrementAndGet();
      presentBytes.addAndGet(index.length(i));
    }
  }

  private ReentrantLock lock(int i) {
    return locks[i % LOCK_STRIPES];
  }

  public Image image() {
    return image;
  }

  /**
   * Reads up to {@code len} bytes at {@code offset}: chunks present from the target, the rest from
   * the backup through {@code handle}. Returns the bytes read (0 at the end).
   */
  public int read(ImageReader.Handle handle, long offset, int len, ImageReader.Sink sink)
      throws IOException {
    long size = image.size();
    if (offset >= size || len <= 0) {
      return 0;
    }
    int n = (int) Math.min(len, size - offset);
    int done = 0;
    while (done < n) {
      long pos = offset + done;
      int i = index.chunkAt(pos);
      int piece = (int) Math.min(n - done, index.end(i) - pos);
      if (isPresent(i)) {
        byte[] buf = readBuffer.get(); // large reads (NBD: up to 32 MiB) go through it in slices
        for (int off = 0; off < piece; off += buf.length) {
          int k = Math.min(buf.length, piece - off);
          target.read(pos + off, buf, 0, k);
          sink.accept(done + off, buf, 0, k);
        }
      } else {
        int at = done;
        demandWaiting.incrementAndGet();
        lastDemandNanos = System.nanoTime();
        try {
          int got =
              handle.read(
                  pos, piece, (dst, data, from, cnt) -> sink.accept(at + dst, data, from, cnt));
          if (got != piece) {
            throw new IOException("short read of " + image.name() + " at " + pos);
          }
        } finally {
          demandWaiting.decrementAndGet();
        }
      }
      done += piece;
    }
    return n;
  }

  /**
   * Writes {@code len} bytes of {@code data} at {@code offset}. Returns once every chunk the write
   * touches is durably recorded as present (the write itself becomes durable with {@link #flush()},
   * like a disk's cache).
   */
  public void write(long offset, byte[] data, int from, int len) throws IOException {
    if (offset < 0 || offset + len > image.size()) {
      throw new IOException(
          "write past the end of " + image.name() + " (" + image.size() + " bytes)");
    }
    guestWrites.incrementAndGet();
    boolean mustRecord = false;
    int done = 0;
    while (done < len) {
      long pos = offset + done;
      int i = index.chunkAt(pos);
      int piece = (int) Math.min(len - done, index.end(i) - pos);
      mustRecord |= !isRecorded(i);
      writePiece(i, pos, data, from + done, piece);
      done += piece;
    }
    if (mustRecord) {
      makeDurable();
    }
  }

  /** Writes a piece of a write that lies within chunk {@code i}, completing the chunk first. */
  private void writePiece(int i, long pos, byte[] data, int from, int piece) throws IOException {
    if (isPresent(i)) {
      target.write(pos, data, from, piece);
    } else {
      complete(i, pos, data, from, piece);
    }
  }

  /**
   * Zeroes {@code length} bytes at {@code offset} (a guest's write-zeroes). Every chunk the range
   * covers whole is written with zeros and becomes present without being fetched; a chunk it covers
   * in part is completed first, like a write. Returns once every chunk it touches is durably
   * recorded as present.
   */
  public void writeZeros(long offset, long length) throws IOException {
    changeChunks(offset, length, true);
  }

  /**
   * Discards the chunks that {@code length} bytes at {@code offset} cover whole and that are not
   * present yet (a guest's trim): they become present without being fetched, and read as zeros (or,
   * in a target this restore created, as whatever an interrupted run left there: the guest's own
   * earlier writes or the backup's bytes). Present chunks and chunks covered in part are left as
   * they are: a discard is a hint. Returns once they are durably recorded.
   */
  public void discard(long offset, long length) throws IOException {
    changeChunks(offset, length, false);
  }

  private void changeChunks(long offset, long length, boolean zero) throws IOException {
    if (offset < 0 || length < 0 || offset > image.size() - length) {
      throw new IOException(
          "range "
              + offset
              + "+"
              + length
              + " past the end of "
              + image.name()
              + " ("
              + image.size()
              + " bytes)");
    }
    guestWrites.incrementAndGet();
    boolean mustRecord = false;
    long end = offset + length;
    for (long pos = offset; pos < end; ) {
      int i = index.chunkAt(pos);
      long to = Math.min(end, index.end(i));
      boolean whole = pos == index.start(i) && to == index.end(i);
      if (whole && (zero || !isPresent(i))) {
        mustRecord |= !isRecorded(i);
        ReentrantLock l = lock(i);
        l.lock();
        try {
          if (zero || (!isPresent(i) && !holesAreZero)) {
            target.writeZeros(index.start(i), index.length(i));
          }
          setPresent(i);
        } finally {
          l.unlock();
        }
      } else if (zero) {
        mustRecord |= !isRecorded(i);
        int piece = (int) (to - pos);
        writePiece(i, pos, new byte[piece], 0, piece);
      }
      pos = to;
    }
    if (mustRecord) {
      makeDurable();
    }
  }

  /**
   * Moves chunk {@code i} into the target with the bytes of a write laid over it, unless another
   * writer (or the background restore) moved it meanwhile, then writes only the piece. The chunk's
   * old bytes are fetched before its lock is taken: no thread waits for the store while it holds a
   * lock.
   */
  private void complete(int i, long pos, byte[] data, int from, int piece) throws IOException {
    long start = index.start(i);
    int length = index.length(i);
    byte[] whole = null;
    if (piece < length) {
      whole = new byte[length];
      if (!image.isZero(i)) {
        reader.readChunk(i, whole, 0); // waits at most the read timeout, holding no lock
      }
      System.arraycopy(data, from, whole, (int) (pos - start), piece);
    }
    ReentrantLock l = lock(i);
    l.lock();
    try {
      if (isPresent(i)) {
        target.write(pos, data, from, piece); // moved meanwhile: only this write's bytes
      } else if (whole == null) {
        target.write(start, data, from, length); // the write covers the chunk: nothing to fetch
        setPresent(i);
      } else {
        target.write(start, whole, 0, length);
        setPresent(i);
      }
    } finally {
      l.unlock();
    }
  }

  /**
   * Makes everything written so far durable: syncs the target, then records every present chunk in
   * the state file. Concurrent callers share one sync where they can.
   */
  public void flush() throws IOException {
    makeDurable();
  }

  private void makeDurable() throws IOException {
    synchronized (durability) {
      boolean changed = false;
      // the chunks moved before the sync begins are what it makes durable: one moved while it
      // runs waits for the next
      long[] moved = new long[present.length()];
      for (int w = 0; w < moved.length; w++) {
        moved[w] = present.get(w);
      }
      target.sync();
      for (int w = 0; w < moved.length; w++) {
        long bits = moved[w];
        while (bits != 0) {
          int i = w * 64 + Long.numberOfTrailingZeros(bits);
          bits &= bits - 1;
          if (!state.isPresent(i)) {
            state.markPresent(i);
            changed = true;
          }
        }
      }
      if (changed) {
        state.save();
        for (int w = 0; w < moved.length; w++) {
          long bits = moved[w];
          recorded.getAndUpdate(w, r -> r | bits);
        }
      }
    }
  }

  // --- background restore ------------------------------------------------------------------

  /**
   * Starts the background restore (a no-op for an overlay or when started already). A mount calls
   * it once the file system answers, so that the mount comes up first.
   */
  public synchronized void start() {
    if (!options.background() || worker != null || closed) {
      return;
    }
    worker = new Thread(this::background, "thaw-live-restore-" + image.name());
    worker.setDaemon(true);
    worker.start();
  }

  private void background() {
    backgroundStart = System.nanoTime();
    ArrayDeque<Integer> order = new ArrayDeque<>();
    ArrayDeque<CompletableFuture<Chunk>> fetches = new ArrayDeque<>();
    Window window = new Window(options.window(), 0);
    int next = 0;
    long lastCheckpoint = System.nanoTime();
    long written = 0;
    try {
      while (!closed) {
        // keep the window full, but leave room for demand reads while they wait
        // while the guest reads from the store (and for a second after), an eighth of the window:
        // background fetches share the link with the guest's, so fewer of them means faster reads
        boolean guestActive =
            demandWaiting.get() > 0 || System.nanoTime() - lastDemandNanos < DEMAND_QUIET_NANOS;
        int limit = guestActive ? window.chunks() / 8 : window.chunks();
        while (window.hasRoomWithin(limit) && next < index.chunkCount()) {
          int i = next++;
          if (isPresent(i)) {
            continue;
          }
          order.add(i);
          window.requested(index.length(i));
          fetches.add(image.chunk(i, Priority.BACKGROUND));
        }
        if (fetches.isEmpty()) {
          break;
        }
        int i = order.poll();
        window.received(index.length(i));
        Chunk c = await(fetches.poll(), i);
        ReentrantLock l = lock(i);
        l.lock();
        try {
          if (!isPresent(i)) {
            if (c.isZero()) {
              if (!holesAreZero) {
                target.writeZeros(index.start(i), c.length());
              }
            } else {
              target.write(index.start(i), c.data(), c.offset(), c.length());
              backgroundBytes.addAndGet(c.length());
              written += c.length();
            }
            setPresent(i);
          }
        } finally {
          l.unlock();
          c.release();
        }
        if (System.nanoTime() - lastCheckpoint > RestoreState.CHECKPOINT_NANOS) {
          makeDurable();
          lastCheckpoint = System.nanoTime();
        }
        throttle(written);
      }
      if (!closed) {
        makeDurable();
        backgroundEnd = System.nanoTime();
      }
    } catch (IOException | RuntimeException e) {
      error = e.getMessage();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private Chunk await(CompletableFuture<Chunk> f, int i) throws IOException, InterruptedException {
    // a chunk that fails after the pipeline's retries stops the background restore; reads and
    // writes still work, and the next mount resumes
    try {
      while (true) {
        try {
          return f.get(200, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
          if (closed) {
            throw new InterruptedException("closed");
          }
        }
      }
    } catch (java.util.concurrent.ExecutionException e) {
      IOException c = Futures.asIOException(e);
      throw new IOException(
          "background restore of "
              + image.name()
              + " stopped at chunk "
              + i
              + ": "
              + c.getMessage(),
          c);
    }
  }

  private void throttle(long written) throws InterruptedException {
    if (options.rateLimit() <= 0) {
      return;
    }
    long due = backgroundStart + (long) (written * 1e9 / options.rateLimit());
    long wait;
    while (!closed && (wait = due - System.nanoTime()) > 0) {
      TimeUnit.NANOSECONDS.sleep(Math.min(wait, TimeUnit.MILLISECONDS.toNanos(200)));
    }
  }

  /** Where the move stands. */
  public Progress progress() {
    long end = backgroundEnd != 0 ? backgroundEnd : System.nanoTime();
    return new Progress(
        index.chunkCount(),
        presentCount.get(),
        presentBytes.get(),
        image.size(),
        backgroundBytes.get(),
        backgroundStart == 0 ? 0 : end - backgroundStart,
        presentCount.get() == index.chunkCount(),
        options.background(),
        guestWrites.get(),
        error);
  }

  /** Stops the background restore and makes everything durable. */
  @Override
  public void close() throws IOException {
    Thread w;
    synchronized (this) {
      closed = true;
      w = worker;
    }
    if (w != null) {
      // never interrupt it: an interrupt during FileChannel I/O closes the target
      try {
        w.join(TimeUnit.SECONDS.toMillis(30));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    try {
      makeDurable();
    } finally {
      state.close();
      target.close();
    }
  }
}
