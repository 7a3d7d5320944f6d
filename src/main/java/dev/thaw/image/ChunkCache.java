package dev.thaw.image;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.RemovalCause;
import dev.thaw.fetch.Chunk;
import dev.thaw.format.Digest;

/**
 * Verified chunks kept in memory, keyed by digest and shared by every image of a mount (a chunk
 * common to two snapshots is held and fetched once). Bounded by the bytes of the chunks it holds;
 * eviction runs on the calling thread, so the bound holds at every moment rather than eventually.
 * Zero chunks are never cached (they cost nothing to serve).
 *
 * <p>The cache holds the pipeline's own {@link Chunk}s, each with a reference of its own: no copy
 * is made, and an evicted chunk's array goes back to the pipeline's pool once its last holder (the
 * cache, a stream's read-ahead hold, a read copying out) lets go, to take the next chunk. So a
 * mount streaming through an image many times the cache size allocates almost nothing that lives
 * long (a garbage collector would otherwise copy and compact every cached chunk), and a reader
 * copying out of a chunk that is evicted meanwhile still reads its bytes.
 *
 * <p>Read-ahead draws on the same memory: {@link #tryReserve} sets bytes aside for chunks a reader
 * holds outside the cache (at most half of the bound), and the cache shrinks by as much, so that
 * cached plus held chunks never exceed the bound. Thread-safe.
 */
public final class ChunkCache {
  /** Bookkeeping per entry on top of the chunk's bytes. */
  private static final int ENTRY_OVERHEAD = 200;

  private final Cache<Digest, Chunk> cache;
  private final long maxBytes;
  private long reserved;

  /**
   * A cache for a front end that reads through {@code pipeline} within {@code cacheBytes} in all:
   * the cache and the read-ahead it lends memory to get what the pipeline's own chunks in flight
   * leave (at least half).
   */
  public static ChunkCache within(long cacheBytes, dev.thaw.fetch.FetchPipeline pipeline) {
    long inFlight =
        (long) pipeline.maxChunksInMemory() * dev.thaw.format.FixedIndex.DEFAULT_CHUNK_SIZE;
    return new ChunkCache(Math.max(cacheBytes / 2, cacheBytes - inFlight));
  }

  public ChunkCache(long maxBytes) {
    this.maxBytes = maxBytes;
    this.cache =
        Caffeine.newBuilder()
            .maximumWeight(maxBytes)
            .weigher((Digest d, Chunk c) -> c.capacity() + ENTRY_OVERHEAD)
            .executor(Runnable::run)
            .removalListener(
                (Digest d, Chunk c, RemovalCause cause) -> {
                  if (c != null) {
                    c.release(); // the cache's reference
                  }
                })
            .build();
  }

  /** The chunk with a reference for the caller (release it), or null if not cached. */
  Chunk get(Digest digest) {
    Chunk c = cache.getIfPresent(digest);
    return c != null && c.retain() ? c : null;
  }

  /** Whether a chunk is cached, without counting as a use. */
  public boolean contains(Digest digest) {
    return cache.asMap().containsKey(digest);
  }

  /**
   * Caches a verified chunk unless it is zero or cached already; the cache takes a reference of its
   * own (the caller keeps its reference). No copy is made.
   */
  void put(Chunk chunk) {
    if (chunk.isZero()
        || chunk.capacity() + ENTRY_OVERHEAD > maxBytes
        || contains(chunk.digest())
        || !chunk.retain()) {
      return;
    }
    if (cache.asMap().putIfAbsent(chunk.digest(), chunk) != null) {
      chunk.release(); // cached already: keep the chunk that is there
    }
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
}
