package dev.thaw.image;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.thaw.fetch.Chunk;
import dev.thaw.format.Digest;

/**
 * Verified chunks kept in memory, keyed by digest and shared by every image of a mount (a chunk
 * common to two snapshots is held and fetched once). Bounded by the bytes of the chunks it holds;
 * eviction runs on the calling thread, so the bound holds at every moment rather than
 * eventually. Zero chunks are never cached (they cost nothing to serve).
 *
 * <p>Read-ahead draws on the same memory: {@link #tryReserve} sets bytes aside for chunks a
 * reader holds outside the cache (at most half of the bound), and the cache shrinks by as much,
 * so that cached plus held chunks never exceed the bound. Thread-safe.
 */
public final class ChunkCache {
  /** Bookkeeping per entry on top of the chunk's bytes. */
  private static final int ENTRY_OVERHEAD = 200;

  private final Cache<Digest, Chunk> cache;
  private final long maxBytes;
  private long reserved;

  public ChunkCache(long maxBytes) {
    this.maxBytes = maxBytes;
    this.cache = Caffeine.newBuilder()
        .maximumWeight(maxBytes)
        .weigher((Digest d, Chunk c) -> c.length() + ENTRY_OVERHEAD)
        .executor(Runnable::run)
        .build();
  }

  /** The chunk if cached, else null. */
  public Chunk get(Digest digest) {
    return cache.getIfPresent(digest);
  }

  /** Whether a chunk is cached, without counting as a use. */
  public boolean contains(Digest digest) {
    return cache.asMap().containsKey(digest);
  }

  /** Caches a verified chunk (zero chunks are ignored). */
  public void put(Chunk chunk) {
    if (!chunk.isZero() && chunk.length() + ENTRY_OVERHEAD <= maxBytes) {
      cache.put(chunk.digest(), chunk);
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
