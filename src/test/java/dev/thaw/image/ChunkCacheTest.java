package dev.thaw.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.fetch.Chunk;
import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.RetryPolicy;
import dev.thaw.format.Digest;
import dev.thaw.testing.MemoryStore;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class ChunkCacheTest {
  private static final int LEN = 1 << 20;
  private final MemoryStore store = new MemoryStore();
  private final dev.thaw.format.BlobCodec codec = new dev.thaw.format.BlobCodec(null);
  private final FetchPipeline pipeline =
      new FetchPipeline(store, 1, 1, new RetryPolicy(1, Duration.ZERO, Duration.ZERO));

  @AfterEach
  void close() {
    pipeline.close();
  }

  /**
   * A verified chunk of {@code LEN} bytes of {@code fill}, fetched as thaw fetches them (the
   * caller's reference).
   */
  private Chunk chunk(byte fill) throws Exception {
    byte[] data = new byte[LEN];
    Arrays.fill(data, fill);
    Digest d = codec.digest(data, 0, LEN);
    store.putRaw(d, codec.encode(data, 0, LEN, false));
    return pipeline.fetch(d, LEN, codec, dev.thaw.fetch.Priority.DEMAND).get();
  }

  @Test
  void anEvictedChunkKeepsItsBytesUntilItsLastReaderLetsGo() throws Exception {
    ChunkCache cache = new ChunkCache(2L * (LEN + 65536) + 1000); // room for two
    Chunk a = chunk((byte) 1);
    cache.put(a);
    a.release(); // the fetcher's reference: the cache keeps its own
    Chunk held = cache.get(a.digest()); // a reader copying out of it
    assertNotNull(held);
    for (byte b = 2; b < 6; b++) {
      Chunk c = chunk(b);
      cache.put(c); // evicts a meanwhile
      c.release();
    }
    assertFalse(cache.contains(a.digest()));
    byte[] expected = new byte[LEN];
    Arrays.fill(expected, (byte) 1);
    assertArrayEquals(expected, held.toArray(), "an evicted chunk is not reused while referenced");
    byte[] array = held.data();
    long reusedBefore = pipeline.pool().reused();
    held.release();
    Chunk next = chunk((byte) 9);
    assertTrue(array == next.data(), "once released, the array takes the next chunk");
    assertEquals(reusedBefore + 1, pipeline.pool().reused());
    assertFalse(held.retain(), "a freed chunk cannot be taken again");
    next.release();
    assertThrows(
        IllegalStateException.class, next::release, "a second release is a bug, and says so");
  }

  @Test
  void getTakesAReferenceAndPutKeepsTheChunkAlreadyCached() throws Exception {
    ChunkCache cache = new ChunkCache(8L * LEN);
    Chunk mine = chunk((byte) 7);
    assertNull(cache.get(mine.digest()));
    cache.put(mine);
    Chunk other = chunk((byte) 7); // fetched again: another chunk of the same digest
    cache.put(other); // cached already: the cache keeps the first
    other.release();
    Chunk got = cache.get(mine.digest());
    assertSame(mine, got);
    assertTrue(other.data() != got.data());
    got.release();
    mine.release();
    assertTrue(cache.contains(mine.digest()), "the cache's own reference keeps it");
    Chunk again = cache.get(mine.digest());
    assertNotNull(again);
    assertEquals(7, again.data()[again.offset() + LEN - 1]);
    again.release();
  }

  /**
   * What a chunk of {@code LEN} bytes weighs in the cache: its array and the entry's bookkeeping.
   */
  private static long weight(Chunk c) {
    return c.capacity() + 200L;
  }

  @Test
  void theBoundCountsEachChunksArrayAndAChunkLargerThanTheBoundIsNotCached() throws Exception {
    Chunk a = chunk((byte) 1);
    long w = weight(a);
    ChunkCache exact = new ChunkCache(w);
    exact.put(a);
    assertTrue(exact.contains(a.digest()), "a chunk that fits the bound exactly is cached");
    assertEquals(w, exact.bytes());
    ChunkCache small = new ChunkCache(w - 1);
    small.put(a);
    assertFalse(small.contains(a.digest()), "a chunk larger than the bound is not cached");
    assertEquals(0, small.size());

    ChunkCache cache = new ChunkCache(4 * w);
    for (byte b = 2; b < 10; b++) {
      Chunk c = chunk(b);
      assertEquals(w, weight(c));
      cache.put(c);
      c.release();
      assertTrue(cache.bytes() <= 4 * w, "cache holds " + cache.bytes());
    }
    assertEquals(4, cache.size());
    assertEquals(4 * w, cache.bytes());
    a.release();
  }

  @Test
  void readAheadReservesAtMostHalfTheBoundAndTheCacheShrinksAndGrowsBackByAsMuch()
      throws Exception {
    Chunk first = chunk((byte) 1);
    long w = weight(first);
    ChunkCache cache = new ChunkCache(4 * w);
    cache.put(first);
    first.release();
    for (byte b = 2; b <= 4; b++) {
      Chunk c = chunk(b);
      cache.put(c);
      c.release();
    }
    assertEquals(4, cache.size());
    assertTrue(cache.tryReserve(w));
    assertEquals(w, cache.reserved());
    assertEquals(3, cache.size(), "a reservation evicts as much");
    assertTrue(cache.tryReserve(w), "half the bound may be reserved");
    assertEquals(2, cache.size());
    assertFalse(cache.tryReserve(1), "not more than half");
    assertEquals(2 * w, cache.reserved());
    cache.release(w);
    assertEquals(w, cache.reserved());
    for (byte b = 5; b <= 6; b++) {
      Chunk c = chunk(b);
      cache.put(c);
      c.release();
    }
    assertEquals(3, cache.size(), "a returned reservation is room for the cache again");
    cache.release(5 * w);
    assertEquals(0, cache.reserved(), "never below nothing");
    assertEquals(3 * w, cache.bytes());
  }

  @Test
  void aCacheWithinABudgetLeavesThePipelinesChunksInFlightTheirShare() {
    long chunks = pipeline.maxChunksInMemory() * 4L * (1 << 20);
    assertEquals(1024L * LEN - chunks, ChunkCache.within(1024L * LEN, pipeline).maxBytes());
    assertEquals(
        chunks / 2, ChunkCache.within(chunks, pipeline).maxBytes(), "at least half of the budget");
  }
}
