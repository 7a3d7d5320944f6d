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
import org.junit.jupiter.api.Test;

class ChunkCacheTest {
  private static final int LEN = 1 << 20;

  /** A verified chunk of {@code LEN} bytes of {@code fill}, made the way thaw makes them. */
  private static Chunk chunk(byte fill) throws Exception {
    byte[] data = new byte[LEN];
    Arrays.fill(data, fill);
    MemoryStore store = new MemoryStore();
    dev.thaw.format.BlobCodec codec = new dev.thaw.format.BlobCodec(null);
    Digest d = codec.digest(data, 0, LEN);
    store.putRaw(d, codec.encode(data, 0, LEN, false));
    try (FetchPipeline p = new FetchPipeline(store, 1, 1, new RetryPolicy(1, Duration.ZERO, Duration.ZERO))) {
      return p.fetch(d, LEN, codec, dev.thaw.fetch.Priority.DEMAND).get();
    }
  }

  @Test
  void anEvictedBlockKeepsItsBytesUntilItsLastReaderLetsGo() throws Exception {
    ChunkCache cache = new ChunkCache(2L * LEN + 1000); // room for two
    Chunk a = chunk((byte) 1);
    cache.put(a);
    ChunkCache.Block held = cache.get(a.digest()); // a reader copying out of it
    assertNotNull(held);
    for (byte b = 2; b < 6; b++) {
      cache.put(chunk(b)); // evicts a meanwhile
    }
    assertFalse(cache.contains(a.digest()));
    byte[] expected = new byte[LEN];
    Arrays.fill(expected, (byte) 1);
    assertArrayEquals(expected, held.data(), "an evicted block is not reused while referenced");
    byte[] array = held.data();
    long reusedBefore = cache.reusedArrays();
    held.release();
    ChunkCache.Block next = cache.copyOf(chunk((byte) 9));
    assertTrue(array == next.data(), "once released, the array takes the next chunk");
    assertEquals(reusedBefore + 1, cache.reusedArrays());
    assertFalse(held.retain(), "a freed block cannot be taken again");
    next.release();
    assertThrows(IllegalStateException.class, next::release, "a second release is a bug, and says so");
  }

  @Test
  void getTakesAReferenceAndPutKeepsTheBlockAlreadyCached() throws Exception {
    ChunkCache cache = new ChunkCache(8L * LEN);
    Chunk a = chunk((byte) 7);
    assertNull(cache.get(a.digest()));
    ChunkCache.Block mine = cache.copyOf(a);
    cache.put(mine);
    ChunkCache.Block other = cache.copyOf(a);
    cache.put(other); // cached already: the cache keeps the first
    other.release();
    ChunkCache.Block got = cache.get(a.digest());
    assertSame(mine, got);
    assertTrue(other.data() != got.data());
    got.release();
    mine.release();
    assertTrue(cache.contains(a.digest()), "the cache's own reference keeps it");
    ChunkCache.Block again = cache.get(a.digest());
    assertNotNull(again);
    assertEquals(7, again.data()[LEN - 1]);
    again.release();
  }
}
