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
}
