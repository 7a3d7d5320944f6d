package dev.thaw.image;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.RemovalCause;
import dev.thaw.fetch.Chunk;
import dev.thaw.format.Digest;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * Verified chunks kept in memory, keyed by digest and shared by every image of a mount (a chunk
 * common to two snapshots is held and fetched once). Bounded by the bytes of the chunks it holds;
 * eviction runs on the calling thread, so the bound holds at every moment rather than
 * eventually. Zero chunks are never cached (they cost nothing to serve).
 *
 * <p>Chunks live in {@link Block}s whose arrays are recycled: an evicted chunk's array takes the
 * next chunk of the same length, so a mount streaming through an image many times the cache
 * size allocates almost nothing that lives long (a garbage collector would otherwise copy and
 * compact every cached chunk). A block is freed for reuse only when its last reference is
 * released, so a reader copying out of a block that is evicted meanwhile still reads its bytes.
 *
 * <p>Read-ahead draws on the same memory: {@link #tryReserve} sets bytes aside for blocks a
 * reader holds outside the cache (at most half of the bound), and the cache shrinks by as much,
 * so that cached plus held chunks never exceed the bound. Thread-safe.
 */
public final class ChunkCache {
  /** Bookkeeping per entry on top of the chunk's bytes. */
  private static final int ENTRY_OVERHEAD = 200;

  private final Cache<Digest, Block> cache;
  private final long maxBytes;
  private final long poolLimit;
  private long reserved;
  /** Free arrays by length; guarded by itself. */
  private final Map<Integer, ArrayDeque<byte[]>> pool = new HashMap<>();
  private long pooledBytes;
  private long reused;

  /**
   * A cache for a front end that reads through {@code pipeline} within {@code cacheBytes} in all:
   * the cache and the read-ahead it lends memory to get what the pipeline's own chunks in flight
   * leave (at least half).
   */
  public static ChunkCache within(long cacheBytes, dev.thaw.fetch.FetchPipeline pipeline) {
    long inFlight = (long) pipeline.maxChunksInMemory() * dev.thaw.format.FixedIndex.DEFAULT_CHUNK_SIZE;
    return new ChunkCache(Math.max(cacheBytes / 2, cacheBytes - inFlight));
  }

  public ChunkCache(long maxBytes) {
    this.maxBytes = maxBytes;
    // a few free arrays, so that the next chunk finds one (beyond the bound: at most 32 MiB)
    this.poolLimit = Math.min(32L << 20, Math.max(maxBytes / 4, 8L << 20));
    this.cache = Caffeine.newBuilder()
        .maximumWeight(maxBytes)
        .weigher((Digest d, Block b) -> b.length() + ENTRY_OVERHEAD)
        .executor(Runnable::run)
        .removalListener((Digest d, Block b, RemovalCause cause) -> {
          if (b != null) {
            b.release(); // the cache's reference
          }
        })
        .build();
  }

  /**
   * A verified chunk's bytes in a recycled array, with a reference count. Whoever holds a
   * reference may read {@code data()[0, length())}; {@link #release} gives it up, and the array
   * is reused once no reference is left. Thread-safe.
   */
  static final class Block {
    private final ChunkCache owner;
    private final Digest digest;
    private final byte[] data;
    private int refs = 1;

    private Block(ChunkCache owner, Digest digest, byte[] data) {
      this.owner = owner;
      this.digest = digest;
      this.data = data;
    }

    Digest digest() {
      return digest;
    }

    int length() {
      return data.length;
    }

    /** The bytes; valid while the caller holds a reference. Never write to them. */
    byte[] data() {
      return data;
    }

    /** Takes another reference; false when the block was already freed (then read elsewhere). */
    synchronized boolean retain() {
      if (refs <= 0) {
        return false;
      }
      refs++;
      return true;
    }

    /** Gives up one reference; the last one returns the array for reuse. */
    void release() {
      int left;
      synchronized (this) {
        left = --refs;
      }
      if (left == 0) {
        owner.recycle(data);
      } else if (left < 0) {
        throw new IllegalStateException("block of chunk " + digest.hex() + " released once too often");
      }
    }
  }

  /**
   * A new block holding a copy of {@code chunk} (not zero), with one reference for the caller.
   */
  Block copyOf(Chunk chunk) {
    byte[] a = allocate(chunk.length());
    chunk.copyTo(0, a, 0, a.length);
    return new Block(this, chunk.digest(), a);
  }

  private byte[] allocate(int length) {
    synchronized (pool) {
      ArrayDeque<byte[]> free = pool.get(length);
      if (free != null && !free.isEmpty()) {
        pooledBytes -= length;
        reused++;
        return free.pop();
      }
    }
    return new byte[length];
  }

  private void recycle(byte[] a) {
    synchronized (pool) {
      if (pooledBytes + a.length <= poolLimit) {
        pool.computeIfAbsent(a.length, n -> new ArrayDeque<>()).push(a);
        pooledBytes += a.length;
      } // else: left to the garbage collector
    }
  }

  /** The chunk's block with a reference for the caller (release it), or null if not cached. */
  Block get(Digest digest) {
    Block b = cache.getIfPresent(digest);
    return b != null && b.retain() ? b : null;
  }

  /** Whether a chunk is cached, without counting as a use. */
  public boolean contains(Digest digest) {
    return cache.asMap().containsKey(digest);
  }

  /**
   * Caches a block unless its chunk is cached already; the cache takes a reference of its own
   * (the caller keeps its reference).
   */
  void put(Block b) {
    if (b.length() + ENTRY_OVERHEAD > maxBytes || !b.retain()) {
      return;
    }
    if (cache.asMap().putIfAbsent(b.digest(), b) != null) {
      b.release(); // cached already: keep the block that is there
    }
  }

  /** Caches a verified chunk (zero chunks are ignored), copying its bytes into a block. */
  void put(Chunk chunk) {
    if (chunk.isZero() || contains(chunk.digest())) {
      return;
    }
    Block b = copyOf(chunk);
    put(b);
    b.release();
  }

  /**
   * Sets {@code bytes} aside for a chunk held outside the cache; false when read-ahead already
   * holds half of the bound.
   */
  public synchronized boolean tryReserve(long bytes) {
    if (reserved + bytes > maxBytes / 2) {
      return false;
    }
    reserved += bytes;
    resize();
    return true;
  }

  /** Returns bytes set aside by {@link #tryReserve}. */
  public synchronized void release(long bytes) {
    reserved = Math.max(0, reserved - bytes);
    resize();
  }

  /** Bytes set aside for read-ahead now. */
  public synchronized long reserved() {
    return reserved;
  }

  private void resize() {
    cache.policy().eviction().ifPresent(e -> e.setMaximum(maxBytes - reserved));
  }

  /** Bytes held now (weights of the cached chunks). */
  public long bytes() {
    return cache.policy().eviction().map(e -> e.weightedSize().orElse(0L)).orElse(0L);
  }

  /** The bound in bytes. */
  public long maxBytes() {
    return maxBytes;
  }

  /** Chunks held now. */
  public long size() {
    return cache.estimatedSize();
  }

  /** Arrays taken from the free list rather than allocated, so far. */
  public long reusedArrays() {
    synchronized (pool) {
      return reused;
    }
  }

}
