package dev.thaw.image;

import dev.thaw.fetch.Chunk;
import dev.thaw.fetch.Futures;
import dev.thaw.fetch.LatencyHistogram;
import dev.thaw.fetch.Priority;
import dev.thaw.format.ChunkIndex;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.LongAdder;

/**
 * Random-access reads of one image through a {@link ChunkCache}, with sequential read-ahead: the
 * read path a mount uses. A read maps to the chunks it touches; cached chunks are served at once,
 * zero chunks without a fetch, missing chunks are fetched at {@link Priority#DEMAND}, all of a
 * read's chunks in parallel.
 *
 * <p>Each open file gets a {@link Handle} that detects sequential streams (several may run in one
 * file; a stream continues across zero chunks a reader skips). Once a stream has read sequentially
 * twice, the next chunks are fetched at {@link Priority#READ_AHEAD} (a window that may start small
 * and grows as the stream goes on, up to {@code readAhead} chunks; {@link Settings}) and held by
 * the stream (chunks it references) until they are read or the stream is abandoned, so that the
 * cache cannot evict them before their reader arrives. Random reads start no read-ahead. Every copy
 * out of a chunk happens under a reference of its own, so a chunk evicted meanwhile is not reused
 * before the copy ends, and every reference a read takes is given back, also when it fails or times
 * out.
 *
 * <p>A chunk that cannot be fetched or verified fails the reads that need it with an {@link
 * IOException} naming the chunk and store; nothing is remembered, so the next read tries again.
 * Thread-safe; handles may be used from several threads at once.
 */
public final class ImageReader {
  /** A read this close to where a stream stands continues it (kernel requests may reorder). */
  private static final long STREAM_SLACK = 1 << 20;

  private static final int MAX_STREAMS = 4;

  private final Image image;
  private final ChunkCache cache;
  private final int readAhead;
  private final long readAheadBytes;
  private final int firstWindow;
  private final Duration readTimeout;
  private final LongAdder reads = new LongAdder();
  private final LongAdder bytesRead = new LongAdder();
  private final LongAdder cacheHits = new LongAdder();
  private final LongAdder cacheMisses = new LongAdder();
  private final LongAdder readAheadHits = new LongAdder();
  private final LongAdder readAheadIssued = new LongAdder();
  private final LongAdder fetched = new LongAdder();
  private final LongAdder bytesFetched = new LongAdder();
  private final LongAdder errors = new LongAdder();
  private final LatencyHistogram readLatency = new LatencyHistogram();
  private final java.util.concurrent.ConcurrentHashMap<Integer, CompletableFuture<Chunk>> inFlight =
      new java.util.concurrent.ConcurrentHashMap<>();

  /**
   * The fetch of a chunk a read last gave up waiting for, and when. A read of the same fetch within
   * {@link #RETRY_GRACE_NANOS} after fails at once: the kernel retries a failed read straight away,
   * which would otherwise double the wait a user sees.
   */
  private final java.util.concurrent.ConcurrentHashMap<Integer, TimedOut> timedOut =
      new java.util.concurrent.ConcurrentHashMap<>();

  private static final long RETRY_GRACE_NANOS = TimeUnit.SECONDS.toNanos(1);

  /** A fetch a read stopped waiting for, and when. */
  private record TimedOut(CompletableFuture<Chunk> fetch, long at) {}

  /**
   * How a reader reads.
   *
   * @param readAhead chunks a sequential stream keeps ahead (0 disables read-ahead)
   * @param readAheadBytes and at least this many bytes ahead, so that small chunks (casync's are 64
   *     KiB on average) do not starve a stream; 0 counts chunks only
   * @param readTimeout how long a read waits for a chunk before it fails (the fetch goes on)
   * @param firstWindow chunks (and the same share of {@code readAheadBytes}) a stream reads ahead
   *     when it starts; the window doubles each time the reader has gone through half of it, up to
   *     the full one. A short sequential read (one file of a few MiB) then fetches little it does
   *     not need, and does not share the link with a full window while it waits. At most {@code
   *     readAhead}; 0 or less: the full window at once.
   */
  public record Settings(
      int readAhead, long readAheadBytes, Duration readTimeout, int firstWindow) {
    public Settings {
      readAhead = Math.max(0, readAhead);
      readAheadBytes = Math.max(0, readAheadBytes);
      firstWindow = firstWindow <= 0 ? readAhead : Math.min(firstWindow, readAhead);
    }

    /** Settings whose streams read ahead the full window at once. */
    public Settings(int readAhead, long readAheadBytes, Duration readTimeout) {
      this(readAhead, readAheadBytes, readTimeout, readAhead);
    }
  }

  public ImageReader(Image image, ChunkCache cache, Settings settings) {
    this.image = image;
    this.cache = cache;
    this.readAhead = settings.readAhead();
    this.readAheadBytes = settings.readAheadBytes();
    this.readTimeout = settings.readTimeout();
    this.firstWindow = settings.firstWindow();
  }

  public Image image() {
    return image;
  }

  /** Starts a new reader (one per open file). */
  public Handle open() {
    return new Handle(STREAM_SLACK, readAhead);
  }

  /**
   * Starts a reader for a client that keeps many requests in flight (an NBD connection): reads that
   * reach it out of order by up to {@code reorder} bytes still continue one stream, so that its
   * read-ahead is neither restarted nor fetched twice. Reads that near each other count as a stream
   * too.
   */
  public Handle open(long reorder) {
    return new Handle(Math.max(STREAM_SLACK, reorder), readAhead);
  }

  /**
   * Starts a reader that never reads ahead, for a few small reads whose neighbours nobody may want
   * (a partition table scan): read-ahead would fetch chunks only to drop them at close.
   */
  public Handle openWithoutReadAhead() {
    return new Handle(STREAM_SLACK, 0);
  }

  /** Counters of this image's reads. */
  public record Stats(
      long reads,
      long bytesRead,
      long cacheHits,
      long cacheMisses,
      long readAheadHits,
      long readAheadIssued,
      long fetched,
      long bytesFetched,
      long errors,
      long readP50Micros,
      long readP99Micros) {}

  public Stats stats() {
    return new Stats(
        reads.sum(),
        bytesRead.sum(),
        cacheHits.sum(),
        cacheMisses.sum(),
        readAheadHits.sum(),
        readAheadIssued.sum(),
        fetched.sum(),
        bytesFetched.sum(),
        errors.sum(),
        readLatency.quantileMicros(0.5),
        readLatency.quantileMicros(0.99));
  }

  /** Chunks of this image held in the cache now (zero chunks count as held). */
  public int cachedChunks() {
    ChunkIndex idx = image.index();
    int n = 0;
    for (int i = 0; i < idx.chunkCount(); i++) {
      if (image.isZero(i) || cache.contains(idx.digest(i))) {
        n++;
      }
    }
    return n;
  }

  /**
   * Fetches chunk {@code i} (not zero, not cached) at {@code priority}, joining and lifting a fetch
   * under way. A demand fetch enters the cache when it completes; a read-ahead fetch stays with the
   * stream that holds it until read.
   */
  private CompletableFuture<Chunk> fetch(int i, Priority priority, boolean demand) {
    CompletableFuture<Chunk> f = image.chunk(i, priority);
    if (demand) {
      // the caller's reference is not given back before this ran: the cache can take its own
      f =
          f.whenComplete(
              (chunk, e) -> {
                if (chunk != null) {
                  cache.put(chunk);
                }
              });
    }
    CompletableFuture<Chunk> fetch = f;
    if (inFlight.putIfAbsent(i, fetch) == null) { // count each fetch once, however many wait on it
      var unused =
          fetch.whenComplete(
              (chunk, e) -> {
                inFlight.remove(i, fetch);
                timedOut.computeIfPresent(i, (k, t) -> t.fetch() == fetch ? null : t);
                if (chunk != null) {
                  fetched.increment();
                  bytesFetched.add(chunk.length());
                }
              });
    }
    return f;
  }

  /**
   * Copies chunk {@code i} whole into {@code dst} at {@code dstOff}, for a writer that completes a
   * chunk before changing part of it (a live restore): zero, cached, or fetched at demand priority;
   * waits at most the read timeout.
   *
   * @throws IOException naming the chunk and store when it cannot be had
   */
  public void readChunk(int i, byte[] dst, int dstOff) throws IOException {
    ChunkIndex idx = image.index();
    try (Handle h = open()) {
      h.read(idx.start(i), dst, dstOff, idx.length(i));
    }
  }

  /**
   * Receives the pieces of a read in order: {@code length} bytes for the read's bytes {@code
   * [dstOffset, dstOffset + length)} taken from {@code data} at {@code from}, or zeros when {@code
   * data} is null. The data array is shared: copy out of it, never into it.
   */
  @FunctionalInterface
  public interface Sink {
    void accept(int dstOffset, byte[] data, int from, int length);
  }

  /**
   * One chunk of a read: a chunk with a reference the read releases, a fetch (whose chunk comes
   * with a reference the read releases), or a chunk a read-ahead stream holds.
   */
  private record Part(Chunk block, CompletableFuture<Chunk> fetch, CompletableFuture<Chunk> held) {}

  /** Reads of one open file. Thread-safe. */
  public final class Handle implements AutoCloseable {
    private final List<Stream> streams = new ArrayList<>();

    /** How far from where a stream stands a read may be and still continue it. */
    private final long slack;

    /** Chunks a stream of this handle keeps ahead (the reader's, or 0). */
    private final int ahead;

    private long clock;

    private Handle(long slack, int ahead) {
      this.slack = slack;
      this.ahead = ahead;
    }

    private static final class Stream {
      long next;

      /** The first chunk read-ahead has not yet considered (issued, skipped as zero or passed). */
      int ahead;

      int hits;
      long lastUse;

      /** Chunks the read-ahead window spans now (0: not started); see {@link Settings}. */
      int window;

      /** Where the stream stood when its window last grew, and the window's bytes then. */
      long grownAt;

      long windowBytes;
      final TreeMap<Integer, CompletableFuture<Chunk>> held = new TreeMap<>();
    }

    /**
     * Reads up to {@code len} bytes at {@code offset} into {@code dst}; returns the bytes read (0
     * at or past the end of the image).
     *
     * @throws IOException naming the chunk and store when a chunk cannot be had
     */
    public int read(long offset, byte[] dst, int dstOff, int len) throws IOException {
      return read(
          offset,
          len,
          (at, data, from, n) -> {
            if (data == null) {
              Arrays.fill(dst, dstOff + at, dstOff + at + n, (byte) 0);
            } else {
              System.arraycopy(data, from, dst, dstOff + at, n);
            }
          });
    }

    /**
     * Reads up to {@code len} bytes at {@code offset}, handing them to {@code sink} straight from
     * the chunks (no intermediate copy); returns the bytes read (0 at or past the end).
     *
     * @throws IOException naming the chunk and store when a chunk cannot be had
     */
    public int read(long offset, int len, Sink sink) throws IOException {
      long t0 = System.nanoTime();
      long size = image.size();
      if (offset >= size || len <= 0) {
        return 0;
      }
      int n = (int) Math.min(len, size - offset);
      ChunkIndex idx = image.index();
      int first = idx.chunkAt(offset);
      int last = idx.chunkAt(offset + n - 1);
      Part[] parts = new Part[last - first + 1];
      try {
        synchronized (this) {
          Stream s = track(offset, n);
          for (int i = first; i <= last; i++) {
            CompletableFuture<Chunk> held = s != null ? s.held.get(i) : null;
            if (held != null) {
              readAheadHits.increment();
              parts[i - first] = new Part(null, null, held);
            } else {
              parts[i - first] = demand(i);
            }
          }
          if (s != null) {
            unhold(s.held.headMap(first)); // passed: no longer held
            if (s.hits >= 2 && ahead > 0) {
              readAhead(s, idx, size);
            }
          }
        }
        long deadline = System.nanoTime() + readTimeout.toNanos();
        int copied = 0;
        for (int k = 0; k < parts.length; k++) {
          int i = first + k;
          long chunkStart = idx.start(i);
          long from = Math.max(offset, chunkStart);
          long to = Math.min(offset + n, idx.end(i));
          int at = (int) (from - offset);
          int pos = (int) (from - chunkStart);
          int piece = (int) (to - from);
          Part p = parts[k];
          if (p.held != null) {
            Chunk b = await(p.held, i, deadline);
            if (b.retain()) {
              parts[k] = p = new Part(b, null, null);
              if (!cache.contains(b.digest())) {
                // being read now: from here on the cache keeps it for later readers (put once,
                // not on each of the ~32 FUSE reads of a chunk: a put runs the cache's upkeep)
                cache.put(b);
              }
            } else {
              parts[k] = p = demand(i); // the stream let go of it meanwhile: read it afresh
            }
          }
          if (p.block != null) {
            sink.accept(at, p.block.data(), p.block.offset() + pos, piece);
            parts[k] = null;
            p.block.release();
          } else {
            Chunk c = await(p.fetch, i, deadline);
            parts[k] = null; // its reference is this read's now
            try {
              sink.accept(at, c.data(), c.offset() + pos, piece);
            } finally {
              c.release();
            }
          }
          copied += piece;
        }
        reads.increment();
        bytesRead.add(copied);
        readLatency.record(System.nanoTime() - t0);
        return copied;
      } finally {
        for (Part p : parts) { // a read that failed part way: its references go back
          if (p != null && p.block != null) {
            p.block.release();
          } else if (p != null && p.fetch != null) {
            var unused = p.fetch.thenAccept(Chunk::release); // now, or once it arrives
          }
        }
      }
    }

    /** Chunk {@code i} for a read now: zero, a cached block, or a demand fetch. */
    private Part demand(int i) {
      if (image.isZero(i)) {
        return new Part(null, image.chunk(i, Priority.DEMAND), null); // completes at once
      }
      Chunk b = cache.get(image.digest(i));
      if (b != null) {
        cacheHits.increment();
        return new Part(b, null, null);
      }
      cacheMisses.increment();
      return new Part(null, fetch(i, Priority.DEMAND, true), null);
    }

    /** Issues the read-ahead window of a sequential stream. Holds the handle's lock. */
    private void readAhead(Stream s, ChunkIndex idx, long size) {
      if (s.window == 0) {
        s.window = firstWindow;
        s.grownAt = s.next;
      } else if (s.window < readAhead && s.next - s.grownAt >= s.windowBytes / 2) {
        s.window = Math.min(readAhead, 2 * s.window);
        s.grownAt = s.next;
      }
      int from = idx.chunkAt(Math.min(size - 1, s.next - 1)) + 1;
      int to = readAheadEnd(idx, from, s.window);
      s.windowBytes = to > from ? idx.end(to - 1) - idx.start(from) : 0;
      for (int i = Math.max(from, s.ahead); i < to; i++) {
        if (!s.held.containsKey(i) && !image.isZero(i)) {
          if (!cache.tryReserve(idx.length(i))) {
            break; // read-ahead holds all the memory it may; the rest comes later
          }
          Chunk cached = cache.get(image.digest(i));
          if (cached != null) {
            s.held.put(i, CompletableFuture.completedFuture(cached)); // kept until read
          } else {
            readAheadIssued.increment();
            s.held.put(i, fetch(i, Priority.READ_AHEAD, false)); // its reference is the stream's
          }
        }
        s.ahead = i + 1;
      }
    }

    /**
     * The end (exclusive) of the read-ahead window of {@code window} chunks that starts at chunk
     * {@code from}: at least {@code window} chunks and at least the same share of {@code
     * readAheadBytes}, within the image.
     */
    private int readAheadEnd(ChunkIndex idx, int from, int window) {
      int n = idx.chunkCount();
      int to = Math.min(n, from + window);
      long bytes = readAheadBytes / readAhead * window;
      if (to < n && idx.start(to) - idx.start(from) < bytes) {
        to = idx.chunkAt(Math.min(idx.size() - 1, idx.start(from) + bytes - 1)) + 1;
      }
      return to;
    }

    private <T> T await(CompletableFuture<T> f, int i, long deadline) throws IOException {
      try {
        CompletableFuture<Chunk> current = inFlight.get(i);
        TimedOut t = timedOut.get(i);
        if (!f.isDone()
            && t != null
            && t.fetch() == current
            && System.nanoTime() - t.at() < RETRY_GRACE_NANOS) {
          deadline = 0; // the same stuck fetch a read gave up on a moment ago
        }
        return f.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
      } catch (ExecutionException | CompletionException e) {
        errors.increment();
        forget(i);
        throw Futures.asIOException(e);
      } catch (TimeoutException e) {
        errors.increment();
        CompletableFuture<Chunk> current = inFlight.get(i);
        if (current != null) {
          timedOut.put(i, new TimedOut(current, System.nanoTime()));
        }
        forget(i);
        throw new IOException(
            "chunk "
                + image.digest(i).hex()
                + " ("
                + image.name()
                + " chunk "
                + i
                + "): no answer from the store within "
                + readTimeout.toSeconds()
                + " s"
                + " (the fetch goes on; a later read tries again once it ends)");
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("read interrupted");
      }
    }

    /** Drops a failed read-ahead future, so that the next read fetches afresh. */
    private synchronized void forget(int i) {
      for (Stream s : streams) {
        CompletableFuture<Chunk> f = s.held.get(i);
        if (f != null && f.isCompletedExceptionally()) {
          unhold(s.held.subMap(i, true, i, true));
        }
      }
    }

    /** Stops holding the given chunks of a stream and returns their memory. */
    private void unhold(Map<Integer, CompletableFuture<Chunk>> chunks) {
      long bytes = 0;
      for (Map.Entry<Integer, CompletableFuture<Chunk>> e : chunks.entrySet()) {
        bytes += image.index().length(e.getKey());
        // the stream's reference, now or once fetched (a failed fetch holds none)
        var unused = e.getValue().thenAccept(Chunk::release);
      }
      chunks.clear();
      if (bytes > 0) {
        cache.release(bytes);
      }
    }

    /** Finds or starts the stream this read belongs to; null when read-ahead is off. */
    private Stream track(long offset, int len) {
      if (ahead == 0) {
        return null;
      }
      clock++;
      Stream match = null;
      for (Stream s : streams) {
        if (offset >= s.next - slack && dataBetween(s.next, offset) <= slack) {
          match = s;
          break;
        }
      }
      if (match == null) {
        if (streams.size() >= MAX_STREAMS) {
          // abandon the least recently used stream, random ones before sequential ones
          Stream lru = streams.get(0);
          for (Stream s : streams) {
            boolean seqS = s.hits >= 2;
            boolean seqL = lru.hits >= 2;
            if ((!seqS && seqL) || (seqS == seqL && s.lastUse < lru.lastUse)) {
              lru = s;
            }
          }
          unhold(lru.held); // abandoned: its chunks are no longer held
          streams.remove(lru);
        }
        match = new Stream();
        match.next = offset;
        streams.add(match);
      }
      match.hits++;
      match.lastUse = clock;
      match.next = Math.max(match.next, offset + len);
      return match;
    }

    /**
     * The bytes of non-zero chunks in {@code [from, to)}, counted up to just past the slack: a
     * reader that skips zero chunks (an NBD client following the allocation map) continues its
     * stream across them.
     */
    private long dataBetween(long from, long to) {
      if (to - from <= slack) {
        return Math.max(0, to - from);
      }
      ChunkIndex idx = image.index();
      long data = 0;
      for (int i = idx.chunkAt(from);
          i < idx.chunkCount() && idx.start(i) < to && data <= slack;
          i++) {
        if (!image.isZero(i)) {
          data += Math.min(to, idx.end(i)) - Math.max(from, idx.start(i));
        }
      }
      return data;
    }

    /** Releases the chunks held for read-ahead. */
    @Override
    public synchronized void close() {
      for (Iterator<Stream> it = streams.iterator(); it.hasNext(); ) {
        Stream s = it.next();
        unhold(s.held);
        it.remove();
      }
    }

    /** Chunks held for read-ahead now (for tests and status). */
    public synchronized int held() {
      int n = 0;
      for (Stream s : streams) {
        n += s.held.size();
      }
      return n;
    }
  }
}
