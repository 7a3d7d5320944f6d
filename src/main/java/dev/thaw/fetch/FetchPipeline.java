package dev.thaw.fetch;

import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;
import dev.thaw.format.ChunkCodec;
import dev.thaw.format.Digest;
import dev.thaw.format.FixedIndex;
import dev.thaw.format.FormatException;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.NotFoundException;
import java.io.IOException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.PriorityBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * Fetches chunks from a store and verifies them: the one way chunk data enters thaw, shared by
 * restore, verify and mount.
 *
 * <ul>
 *   <li>At most {@code parallel} store fetches run at once, each on its own I/O thread.
 *   <li>Single flight: concurrent requests for one digest share one fetch; a request of higher
 *       priority lifts a queued fetch to its priority.
 *   <li>Queued requests start in priority order ({@link Priority}), FIFO within a class.
 *   <li>Blobs are decoded on a CPU pool sized to the cores: CRC, decryption, decompression and the
 *       digest check. Nothing unverified is ever returned. The number of blobs waiting for decoding
 *       is bounded, so a slow CPU slows the fetches instead of filling memory.
 *   <li>Transient store faults are retried with backoff ({@link RetryPolicy}); a body that fails
 *       verification is refetched once; a chunk the store lacks fails at once.
 *   <li>All-zero chunks complete at once without a fetch.
 *   <li>Chunk bytes live in arrays of a {@link BufferPool}: a store reads a blob into one, the
 *       codec checks it there or decodes it into one more, and the {@link Chunk} hands each caller
 *       a reference to give back when done, so that the arrays go round instead of being allocated
 *       per chunk.
 * </ul>
 *
 * <p>Thread-safe. The futures complete on pipeline threads: callers must not block in callbacks
 * attached to them.
 */
public final class FetchPipeline implements AutoCloseable {

  private final ChunkStore store;
  private final BufferPool pool;
  private final RetryPolicy retry;
  private final PriorityBlockingQueue<Request> queue = new PriorityBlockingQueue<>();
  private final ConcurrentHashMap<Key, Request> pending = new ConcurrentHashMap<>();
  private final ExecutorService io;
  private final ExecutorService cpu;
  private final Semaphore decodeSlots;

  /** Decode slots of demand chunks, apart: a demand chunk never waits for background blobs. */
  private final Semaphore demandSlots;

  private final int parallel;
  private final int decodeSlotCount;
  private final AtomicLong sequence = new AtomicLong();
  private final AtomicInteger inFlight = new AtomicInteger();
  private final LongAdder fetched = new LongAdder();
  private final LongAdder bytesFetched = new LongAdder();
  private final LongAdder bytesDecoded = new LongAdder();
  private final LongAdder zeroChunks = new LongAdder();
  private final LongAdder joined = new LongAdder();
  private final LongAdder retries = new LongAdder();
  private final LongAdder errors = new LongAdder();
  private final LatencyHistogram latency = new LatencyHistogram();
  private volatile boolean closed;

  /**
   * @param parallel store fetches in flight at most
   * @param cpuThreads decoder threads (usually the number of cores)
   */
  public FetchPipeline(ChunkStore store, int parallel, int cpuThreads, RetryPolicy retry) {
    this(store, parallel, cpuThreads, retry, new BufferPool(poolBytes(parallel, cpuThreads)));
  }

  /**
   * The free arrays a pipeline's pool keeps by default: as many chunks as the pipeline holds at
   * most ({@link #maxChunksInMemory}). Arrays are then made only when more chunks are held at once
   * than ever before, and never dropped to the garbage collector, where a long restore would fill
   * the old generation with them between full collections.
   */
  public static long poolBytes(int parallel, int cpuThreads) {
    return (long) (parallel + 4 * cpuThreads)
        * BufferPool.capacityFor(FixedIndex.DEFAULT_CHUNK_SIZE);
  }

  /**
   * @param parallel store fetches in flight at most
   * @param cpuThreads decoder threads (usually the number of cores)
   * @param pool where chunk bytes are read and decoded into
   */
  public FetchPipeline(
      ChunkStore store, int parallel, int cpuThreads, RetryPolicy retry, BufferPool pool) {
    if (parallel < 1 || cpuThreads < 1) {
      throw new IllegalArgumentException("parallel and cpuThreads must be at least 1");
    }
    this.store = store;
    this.pool = pool;
    this.retry = retry;
    this.io = Executors.newFixedThreadPool(parallel, daemon("thaw-fetch-"));
    // decodes run in priority order too: a demand read's chunk never waits behind a queue of
    // background chunks (tasks are Decode, comparable by request priority)
    this.cpu =
        new java.util.concurrent.ThreadPoolExecutor(
            cpuThreads,
            cpuThreads,
            0,
            TimeUnit.MILLISECONDS,
            new PriorityBlockingQueue<>(),
            daemon("thaw-decode-"));
    this.parallel = parallel;
    this.decodeSlotCount = cpuThreads * 2;
    this.decodeSlots = new Semaphore(decodeSlotCount);
    this.demandSlots = new Semaphore(decodeSlotCount);
    for (int i = 0; i < parallel; i++) {
      io.execute(this::fetchLoop);
    }
  }

  /**
   * How many chunks the pipeline itself may hold in memory at once (blobs being fetched or waiting
   * for a decoder), for callers that budget memory.
   */
  public int maxChunksInMemory() {
    return parallel + 2 * decodeSlotCount;
  }

  /** The arrays chunks live in. */
  public BufferPool pool() {
    return pool;
  }

  /** The store this pipeline reads. */
  public ChunkStore store() {
    return store;
  }

  /**
   * Returns the verified chunk {@code digest} of {@code length} bytes, decoded with {@code codec},
   * with one reference for the caller ({@link Chunk#release}). The future fails with {@link
   * ChunkFetchException}.
   */
  public CompletableFuture<Chunk> fetch(
      Digest digest, int length, ChunkCodec codec, Priority priority) {
    if (isZero(digest, length, codec)) {
      zeroChunks.increment();
      return CompletableFuture.completedFuture(Chunk.zero(digest, length));
    }
    if (closed) {
      return CompletableFuture.failedFuture(new IllegalStateException("fetch pipeline closed"));
    }
    Key key = new Key(digest, codec);
    while (true) {
      Request existing = pending.get(key);
      if (existing != null) {
        if (existing.join(priority)) {
          joined.increment();
          return existing.future;
        }
        pending.remove(key, existing); // finished meanwhile: a fetch of its own
        continue;
      }
      Request r = new Request(key, length, priority, sequence.incrementAndGet());
      if (pending.putIfAbsent(key, r) == null) {
        queue.add(r);
        return r.future;
      }
    }
  }

  /** Whether {@code digest} is the all-zero chunk of {@code length} bytes under {@code codec}. */
  public static boolean isZero(Digest digest, int length, ChunkCodec codec) {
    return codec.isZero(digest, length);
  }

  private void fetchLoop() {
    while (!closed) {
      Request r;
      try {
        r = queue.take();
      } catch (InterruptedException e) {
        return;
      }
      try {
        fetchOne(r);
      } catch (InterruptedException e) {
        fail(
            r,
            new ChunkFetchException(
                r.key.digest, store.location(r.key.digest), "interrupted", false, e));
        return;
      } catch (Throwable t) {
        // whatever a store throws (an Error included), the fetch ends as a named failure and
        // this thread goes on serving: a future left incomplete would hang its readers for ever
        fail(
            r,
            new ChunkFetchException(
                r.key.digest, store.location(r.key.digest), "reading it failed: " + t, false, t));
      }
    }
  }

  /** Fetches one request's blob and hands it to a decoder. */
  private void fetchOne(Request r) throws InterruptedException {
    r.started = true;
    inFlight.incrementAndGet();
    Buffer blob;
    try {
      blob = fetchWithRetries(r);
    } catch (ChunkFetchException e) {
      fail(r, e);
      return;
    } finally {
      inFlight.decrementAndGet();
    }
    // a demand chunk has slots of its own: it must not wait for background blobs to drain
    Semaphore slots = r.priority == Priority.DEMAND ? demandSlots : decodeSlots;
    slots.acquire();
    try {
      cpu.execute(new Decode(r, blob, slots));
    } catch (RuntimeException e) {
      slots.release();
      blob.release();
      throw e;
    }
  }

  /**
   * Single store attempts, retried while {@link RetryPolicy} allows (the same loop as every other
   * store operation, {@link RetryPolicy#call}), counted here. Not-found and other non-retryable
   * faults end at once.
   */
  private Buffer fetchWithRetries(Request r) throws ChunkFetchException, InterruptedException {
    Digest d = r.key.digest;
    try {
      return retry.call(
          () -> {
            long t0 = System.nanoTime();
            try {
              // a refetch after a body failed verification: from another copy where the store has
              // one
              int max = r.key.codec.maxStoredLength(r.length);
              Buffer blob =
                  r.refetched ? store.readChunkAgain(d, max, pool) : store.readChunk(d, max, pool);
              latency.record(System.nanoTime() - t0);
              bytesFetched.add(blob.length());
              return blob;
            } catch (RuntimeException e) {
              throw new IOException(e.toString(), e); // a store's bug: retried like a fault
            }
          },
          retries::increment,
          () -> closed);
    } catch (NotFoundException e) {
      throw new ChunkFetchException(d, store.location(d), "missing from the store", true, e);
    } catch (IOException e) {
      throw new ChunkFetchException(d, store.location(d), e.getMessage(), false, e);
    }
  }

  /** A blob waiting for a decoder; the most urgent request first. */
  private final class Decode implements Runnable, Comparable<Decode> {
    final Request r;
    final Buffer blob;
    final Semaphore slots;

    Decode(Request r, Buffer blob, Semaphore slots) {
      this.r = r;
      this.blob = blob;
      this.slots = slots;
    }

    @Override
    public void run() {
      decode(r, blob, slots);
    }

    @Override
    public int compareTo(Decode o) {
      return r.compareTo(o.r);
    }
  }

  private void decode(Request r, Buffer blob, Semaphore slots) {
    try {
      // the codec takes the blob over: it returns it as the data, or releases it
      Buffer data = r.key.codec.decodeChunk(blob, r.key.digest, r.length, pool);
      fetched.increment();
      bytesDecoded.add(data.length());
      Chunk c = Chunk.of(r.key.digest, data);
      // one reference for every caller that asked for it; no caller joins from here on
      c.share(r.finish() - 1);
      // out of the single-flight map first: once a reader has the chunk, a later request is a
      // new fetch (the store may have changed since), never a join of this finished one
      pending.remove(r.key, r);
      r.future.complete(c);
    } catch (FormatException e) {
      if (!r.refetched && !closed) {
        r.refetched = true; // a body damaged in transit gets one more chance
        retries.increment();
        queue.add(r);
      } else {
        fail(
            r,
            new ChunkFetchException(
                r.key.digest, store.location(r.key.digest), e.getMessage(), false, e));
      }
    } catch (Throwable t) {
      // a decoder's bug or an Error: the fetch still ends, named, and the thread lives on
      fail(
          r,
          new ChunkFetchException(
              r.key.digest, store.location(r.key.digest), "decoding failed: " + t, false, t));
    } finally {
      slots.release();
    }
  }

  private void fail(Request r, ChunkFetchException e) {
    errors.increment();
    r.finish();
    // remove first: a failure must not stick; the next request for the digest fetches anew
    pending.remove(r.key, r);
    r.future.completeExceptionally(e);
  }

  /** Current counters. */
  public PipelineStats stats() {
    return new PipelineStats(
        fetched.sum(),
        bytesFetched.sum(),
        bytesDecoded.sum(),
        zeroChunks.sum(),
        joined.sum(),
        retries.sum(),
        errors.sum(),
        inFlight.get(),
        queue.size(),
        latency.quantileMicros(0.5),
        latency.quantileMicros(0.99));
  }

  /** Stops the threads; requests not yet complete fail. Does not close the store. */
  @Override
  public void close() {
    closed = true;
    io.shutdownNow();
    cpu.shutdownNow();
    IllegalStateException ex = new IllegalStateException("fetch pipeline closed");
    for (Request r : pending.values()) {
      r.future.completeExceptionally(ex);
    }
    pending.clear();
    queue.clear();
  }

  private static ThreadFactory daemon(String prefix) {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, prefix + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }

  /** A chunk as a codec sees it: the same digest under two keys is two different chunks. */
  private record Key(Digest digest, ChunkCodec codec) {}

  private final class Request implements Comparable<Request> {
    final Key key;
    final int length;
    final long seq;
    final CompletableFuture<Chunk> future = new CompletableFuture<>();
    volatile Priority priority;
    volatile boolean started;
    volatile boolean refetched;

    /** Callers waiting for this fetch, each owed a reference; guarded by this. */
    private int callers = 1;

    /** Whether the fetch ended (no more callers may join); guarded by this. */
    private boolean finished;

    Request(Key key, int length, Priority priority, long seq) {
      this.key = key;
      this.length = length;
      this.priority = priority;
      this.seq = seq;
    }

    /**
     * Adds a caller, lifting the request to {@code p} if that is higher; false once the fetch ended
     * (then the caller starts a new one).
     */
    synchronized boolean join(Priority p) {
      if (finished) {
        return false;
      }
      callers++;
      raise(p);
      return true;
    }

    /** Ends the fetch: no caller joins from now on. Returns how many callers it has. */
    synchronized int finish() {
      finished = true;
      return callers;
    }

    /** Moves a queued request up to {@code p} if that is higher. */
    synchronized void raise(Priority p) {
      if (p.compareTo(priority) < 0 && !started && queue.remove(this)) {
        priority = p;
        queue.add(this);
      }
    }

    @Override
    public int compareTo(Request o) {
      int c = priority.compareTo(o.priority);
      return c != 0 ? c : Long.compare(seq, o.seq);
    }
  }
}
