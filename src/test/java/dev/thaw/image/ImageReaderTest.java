package dev.thaw.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.fetch.Chunk;
import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.RetryPolicy;
import dev.thaw.format.Digest;
import dev.thaw.store.SnapshotPath;
import dev.thaw.store.StoreException;
import dev.thaw.testing.Fixtures;
import dev.thaw.testing.MemoryStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class ImageReaderTest {
  private static final int MIB = Fixtures.MIB;
  private static final int CHUNK = 4 * MIB;
  private MemoryStore store;
  private FetchPipeline pipeline;
  private byte[] image;
  private Image img;

  /**
   * The test image (chunk i % 3 == 2 is zero) and a store holding its backup, made once per JVM:
   * 120 MiB took longer to make than most tests take. Each test reads a copy of the store, so that
   * its faults, damage and read counts are its own. (Making a backup uses no class of this package:
   * a mutation test of this package never changes it.)
   */
  private static final class Backed {
    static final byte[] IMAGE = Fixtures.image(30, 1000, 9);
    static final MemoryStore STORE = new MemoryStore();
    static final SnapshotPath SNAPSHOT = backup();

    private static SnapshotPath backup() {
      try {
        Path dir = Files.createTempDirectory("thaw-image-reader-test");
        try {
          return Fixtures.backup(STORE, dir, IMAGE, null);
        } finally {
          Files.delete(dir);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }
  }

  @BeforeEach
  void setUp() throws Exception {
    image = Backed.IMAGE;
    store = Backed.STORE.copy();
    pipeline =
        new FetchPipeline(
            store, 4, 2, new RetryPolicy(2, Duration.ofMillis(1), Duration.ofMillis(2)));
    img =
        Snapshot.open(store, Backed.SNAPSHOT, KeyPolicy.strict(null)).openImage("a.img", pipeline);
  }

  @AfterEach
  void tearDown() {
    pipeline.close();
  }

  private ImageReader reader(long cacheBytes, int readAhead) {
    return new ImageReader(
        img,
        new ChunkCache(cacheBytes),
        new ImageReader.Settings(readAhead, 0, Duration.ofSeconds(20)));
  }

  /** Flips a bit of the stored chunk {@code d}; returns its good blob, to put back. */
  private byte[] damage(Digest d) {
    byte[] good = store.raw(d);
    byte[] broken = good.clone();
    broken[100] ^= 1;
    store.putRaw(d, broken);
    return good;
  }

  private static byte[] read(ImageReader.Handle h, long off, int len) throws IOException {
    return Fixtures.read(h, off, len);
  }

  @Test
  void readsOfAChunkTheStoreDoesNotAnswerFailWithinOneTimeoutInAllUntilItsFetchEnds()
      throws Exception {
    Digest stuck = img.digest(4);
    CountDownLatch release = new CountDownLatch(1);
    store.fault =
        (d, a) -> {
          if (d.equals(stuck)) {
            try {
              release.await();
            } catch (InterruptedException e) {
              throw new java.io.InterruptedIOException();
            }
          }
        };
    ImageReader r =
        new ImageReader(
            img, new ChunkCache(64L * MIB), new ImageReader.Settings(0, 0, Duration.ofMillis(600)));
    try (ImageReader.Handle h = r.open()) {
      long t0 = System.nanoTime();
      IOException first = assertThrows(IOException.class, () -> read(h, 4L * CHUNK, 4096));
      assertTrue(first.getMessage().contains("no answer from the store"), first.getMessage());
      // the kernel retries a failed read at once: that retry must not wait a second timeout
      IOException again = assertThrows(IOException.class, () -> read(h, 4L * CHUNK + 4096, 4096));
      long took = (System.nanoTime() - t0) / 1_000_000;
      assertTrue(
          took < 1100, "two reads of a stuck chunk took " + took + " ms, one timeout is 600 ms");
      assertTrue(again.getMessage().contains(stuck.hex()), again.getMessage());
      assertArrayEquals(Arrays.copyOfRange(image, 0, 4096), read(h, 0, 4096), "other chunks read");
      release.countDown(); // the fetch ends: a later read waits afresh and gets the data
      Thread.sleep(1100);
      assertArrayEquals(
          Arrays.copyOfRange(image, 4 * CHUNK, 4 * CHUNK + 4096), read(h, 4L * CHUNK, 4096));
    }
  }

  @Test
  void readsAnyRangeExactly() throws Exception {
    ImageReader r = reader(256L * MIB, 0);
    try (ImageReader.Handle h = r.open()) {
      long[][] ranges = {
        {0, 100}, {CHUNK - 10, 20}, {5L * CHUNK + 7, 3 * CHUNK}, {image.length - 50, 4096}
      };
      for (long[] rg : ranges) {
        byte[] got = read(h, rg[0], (int) rg[1]);
        int end = (int) Math.min(image.length, rg[0] + rg[1]);
        assertArrayEquals(Arrays.copyOfRange(image, (int) rg[0], end), got, "range " + rg[0]);
      }
      assertEquals(0, h.read(image.length, new byte[10], 0, 10), "EOF");
    }
    assertEquals(0, store.reads(img.digest(2)), "zero chunks are never fetched");
  }

  @Test
  void sequentialReadsHoldTheNextChunksAndRandomReadsDoNot() throws Exception {
    ImageReader r = reader(512L * MIB, 6);
    try (ImageReader.Handle h = r.open()) {
      read(h, 0, 128 * 1024);
      assertEquals(0, h.held(), "one read is not yet a stream");
      read(h, 128 * 1024, 128 * 1024);
      // chunks 1..6 ahead, minus the zero chunks 2 and 5
      assertEquals(4, h.held());
      assertEquals(4, r.stats().readAheadIssued());
      for (long off = 256 * 1024; off < 2L * CHUNK; off += 128 * 1024) {
        assertArrayEquals(
            Arrays.copyOfRange(image, (int) off, (int) off + 128 * 1024), read(h, off, 128 * 1024));
      }
      assertTrue(r.stats().readAheadHits() > 0);
    }
    ImageReader r2 = reader(512L * MIB, 6);
    try (ImageReader.Handle h = r2.open()) {
      for (long chunk : new long[] {20, 3, 27, 9, 14, 0}) {
        read(h, chunk * CHUNK + 4096, 4096);
      }
      assertEquals(0, r2.stats().readAheadIssued(), "random reads start no read-ahead");
      assertEquals(0, h.held());
    }
  }

  @Test
  void aStreamThatSkipsZeroChunksKeepsItsReadAhead() throws Exception {
    ImageReader r = reader(512L * MIB, 6);
    try (ImageReader.Handle h = r.open()) {
      // every non-zero chunk in order, the zero ones (i % 3 == 2) skipped, as an NBD client does
      for (int c = 0; c < 12; c++) {
        if (c % 3 != 2) {
          for (long off = (long) c * CHUNK; off < (c + 1L) * CHUNK; off += MIB) {
            read(h, off, MIB);
          }
        }
      }
      long misses = r.stats().cacheMisses();
      assertTrue(misses <= 2, "only the stream's first chunks are demand fetches, not " + misses);
      assertTrue(h.held() > 0, "the stream still holds read-ahead");
      // a read far away over data is another stream
      read(h, 21L * CHUNK, 4096);
      read(h, 28L * CHUNK, 4096);
      assertEquals(misses + 2, r.stats().cacheMisses());
    }
  }

  @Test
  void aHandleForManyRequestsInFlightKeepsOneStreamThroughReorderedReads() throws Exception {
    long[] misses = new long[2];
    for (int k = 0; k < 2; k++) {
      ImageReader r = reader(512L * MIB, 6);
      try (ImageReader.Handle h = k == 0 ? r.open() : r.open(16L * MIB)) {
        // 2 MiB reads whose neighbours arrive swapped, as parallel requests may: 2, 0, 6, 4, ...
        for (long pair = 0; pair < 12L * CHUNK; pair += 4 * MIB) {
          for (long off : new long[] {pair + 2 * MIB, pair}) {
            assertArrayEquals(
                Arrays.copyOfRange(image, (int) off, (int) off + 2 * MIB), read(h, off, 2 * MIB));
          }
        }
      }
      misses[k] = r.stats().cacheMisses();
    }
    assertTrue(
        misses[1] <= 2, "one stream: only its first chunks are demand fetches, not " + misses[1]);
    assertTrue(
        misses[0] > misses[1], "the default handle loses the stream: " + misses[0] + " misses");
  }

  @Test
  void heldChunksSurviveATinyCacheAndAreReleasedOnClose() throws Exception {
    ChunkCache cache = new ChunkCache(40L * MIB); // read-ahead may hold 20 MiB: 5 chunks
    ImageReader r =
        new ImageReader(img, cache, new ImageReader.Settings(16, 0, Duration.ofSeconds(20)));
    try (ImageReader.Handle h = r.open()) {
      read(h, 0, 4096);
      read(h, 4096, 4096);
      assertTrue(h.held() <= 5 && h.held() > 0, "held " + h.held());
      assertTrue(cache.reserved() <= 20L * MIB);
      // whatever the cache does meanwhile, the held chunks are served without another fetch
      for (long off = 8192; off < 5L * CHUNK; off += MIB) {
        read(h, off, 4096);
        assertTrue(cache.reserved() <= 20L * MIB, "read-ahead exceeded half the cache");
      }
      for (int c : new int[] {1, 3, 4}) {
        assertEquals(1, store.reads(img.digest(c)), "chunk " + c + " fetched more than once");
      }
    }
    assertEquals(0, cache.reserved(), "closing the handle releases its read-ahead memory");
  }

  @Test
  void aFailingChunkFailsOnlyItsReadsAndIsRetriedNextTime() throws Exception {
    Digest bad = img.digest(4);
    byte[] good = damage(bad);
    ImageReader r = reader(256L * MIB, 0);
    try (ImageReader.Handle h = r.open()) {
      IOException e = assertThrows(IOException.class, () -> read(h, 4L * CHUNK + 10, 10));
      assertTrue(
          e.getMessage().contains(bad.hex()) && e.getMessage().contains("mem:"), e.getMessage());
      assertThrows(
          IOException.class,
          () -> read(h, 4L * CHUNK - 10, 20),
          "a read spanning into it fails too");
      assertArrayEquals(
          Arrays.copyOfRange(image, 3 * CHUNK, 3 * CHUNK + 10), read(h, 3L * CHUNK, 10));
      store.putRaw(bad, good);
      assertArrayEquals(
          Arrays.copyOfRange(image, 4 * CHUNK + 10, 4 * CHUNK + 20), read(h, 4L * CHUNK + 10, 10));
      assertTrue(r.stats().errors() >= 2);
    }
  }

  @Test
  void aStoreThatHangsFailsTheReadAfterTheTimeout() throws Exception {
    CountDownLatch never = new CountDownLatch(1);
    store.fault =
        (d, attempt) -> {
          try {
            never.await();
          } catch (InterruptedException e) {
            throw new StoreException("interrupted", false);
          }
        };
    ImageReader r =
        new ImageReader(
            img, new ChunkCache(64L * MIB), new ImageReader.Settings(0, 0, Duration.ofMillis(300)));
    try (ImageReader.Handle h = r.open()) {
      long t0 = System.nanoTime();
      IOException e = assertThrows(IOException.class, () -> read(h, 0, 10));
      assertTrue(e.getMessage().contains("no answer"), e.getMessage());
      assertTrue(System.nanoTime() - t0 < 5_000_000_000L);
      assertEquals(1, r.stats().errors());
    } finally {
      never.countDown();
    }
  }

  @Test
  void cacheStaysWithinItsBound() throws Exception {
    ChunkCache cache = new ChunkCache(20L * MIB);
    ImageReader r =
        new ImageReader(img, cache, new ImageReader.Settings(0, 0, Duration.ofSeconds(20)));
    try (ImageReader.Handle h = r.open()) {
      for (int c = 0; c < 30; c++) {
        read(h, (long) c * CHUNK, 100);
        assertTrue(cache.bytes() <= 20L * MIB, "cache holds " + cache.bytes());
      }
    }
  }

  @Test
  void recycledArraysNeverServeAnotherChunksBytes() throws Exception {
    // a cache of two chunks under six readers: arrays pass from chunk to chunk all the time,
    // often while another reader still copies out of the chunk that was evicted
    ChunkCache cache = new ChunkCache(8L * MIB + 4096);
    ImageReader r =
        new ImageReader(img, cache, new ImageReader.Settings(1, 0, Duration.ofSeconds(20)));
    java.util.List<Throwable> failures =
        java.util.Collections.synchronizedList(new java.util.ArrayList<>());
    Thread[] readers = new Thread[6];
    for (int t = 0; t < readers.length; t++) {
      int seed = t;
      readers[t] =
          new Thread(
              () -> {
                java.util.Random rnd = new java.util.Random(seed);
                try (ImageReader.Handle h = r.open()) {
                  for (int k = 0; k < 200; k++) {
                    long off =
                        seed % 2 == 0
                            ? (k * 256L * 1024) % image.length // sequential, with read-ahead
                            : rnd.nextInt(image.length - 200_000);
                    int len = 4096 + rnd.nextInt(196_000);
                    byte[] got = read(h, off, len);
                    int end = (int) Math.min(image.length, off + len);
                    if (!Arrays.equals(Arrays.copyOfRange(image, (int) off, end), got)) {
                      throw new AssertionError(
                          "reader " + seed + " got wrong bytes at " + off + "+" + len);
                    }
                  }
                } catch (Throwable e) {
                  failures.add(e);
                }
              });
      readers[t].start();
    }
    for (Thread t : readers) {
      t.join();
    }
    assertTrue(failures.isEmpty(), () -> failures.get(0).toString());
    long reused = pipeline.pool().reused();
    assertTrue(reused > 10, "arrays were recycled " + reused + " times");
    assertEquals(0, cache.reserved(), "every handle let go of its read-ahead");
  }

  @Test
  void readAheadReservesExactlyTheChunksAStreamHoldsAndReleasesEachOnce() throws Exception {
    ChunkCache cache = new ChunkCache(256L * MIB);
    ImageReader r =
        new ImageReader(img, cache, new ImageReader.Settings(4, 0, Duration.ofSeconds(20)));
    try (ImageReader.Handle h = r.open()) {
      for (long off = 0; off < 12L * CHUNK; off += MIB) {
        assertArrayEquals(Arrays.copyOfRange(image, (int) off, (int) off + MIB), read(h, off, MIB));
        // chunks passed are let go of at once: a stream holds at most its window ahead
        assertTrue(h.held() <= 4, "held " + h.held() + " at " + off);
        assertEquals((long) h.held() * CHUNK, cache.reserved(), "reserved at " + off);
      }
      assertTrue(h.held() > 0);
    }
    assertEquals(0, cache.reserved());
    // every chunk read went into the cache once, with a reference of its own: none was let go of
    // twice (its array would serve another chunk), so each reads back as itself from the cache
    long misses = r.stats().cacheMisses();
    try (ImageReader.Handle h = r.openWithoutReadAhead()) {
      for (int c = 0; c < 12; c++) {
        Chunk other =
            pipeline
                .fetch(
                    img.digest(c % 2 == 0 ? 24 : 25),
                    CHUNK,
                    new dev.thaw.format.BlobCodec(null),
                    dev.thaw.fetch.Priority.DEMAND)
                .join(); // takes any array let go of meanwhile
        assertArrayEquals(
            Arrays.copyOfRange(image, c * CHUNK, c * CHUNK + 4096),
            read(h, (long) c * CHUNK, 4096),
            "chunk " + c);
        other.release();
      }
    }
    assertEquals(misses, r.stats().cacheMisses(), "every chunk was served from the cache");
  }

  @Test
  void statsCountReadsHitsAndFetchesAndTheCacheHoldsWhatWasRead() throws Exception {
    ImageReader r = reader(256L * MIB, 0);
    assertSame(img, r.image());
    try (ImageReader.Handle h = r.openWithoutReadAhead()) {
      byte[] dst = new byte[8192];
      Arrays.fill(dst, (byte) 0x55);
      assertEquals(8192, h.read(2L * CHUNK + 100, dst, 0, 8192));
      assertArrayEquals(new byte[8192], dst, "a zero chunk reads as zeros over whatever dst held");
      assertEquals(0, h.read(5, new byte[1], 0, 0));
      assertEquals(0, store.totalReads(), "a read of nothing fetches nothing");
      read(h, 0, 4096);
      read(h, CHUNK + 10, 100);
      read(h, 10, 100); // from the cache
    }
    ImageReader.Stats st = r.stats();
    assertEquals(4, st.reads());
    assertEquals(8192 + 4096 + 100 + 100, st.bytesRead());
    assertEquals(2, st.fetched());
    assertEquals(2L * CHUNK, st.bytesFetched());
    assertEquals(2, st.cacheMisses());
    assertEquals(1, st.cacheHits());
    assertTrue(st.readP50Micros() > 0 && st.readP99Micros() < 60_000_000, st.toString());
    assertEquals(10 + 2, r.cachedChunks(), "the ten zero chunks and the two read");
  }

  @Test
  void everyReadGivesItsChunkBackSoThatEvictedArraysAreReused() throws Exception {
    ChunkCache cache = new ChunkCache(2L * (CHUNK + 65536) + 1000); // two chunks
    ImageReader r =
        new ImageReader(img, cache, new ImageReader.Settings(0, 0, Duration.ofSeconds(20)));
    try (ImageReader.Handle h = r.open()) {
      for (int c : new int[] {0, 1, 3, 4, 6, 7, 9, 10}) {
        for (int k = 0; k < 2; k++) { // a fetch, then a cache hit
          assertArrayEquals(
              Arrays.copyOfRange(image, c * CHUNK + k, c * CHUNK + k + 100),
              read(h, (long) c * CHUNK + k, 100));
        }
      }
    }
    assertTrue(
        pipeline.pool().reused() >= 4, "arrays reused " + pipeline.pool().reused() + " times");
  }

  @Test
  void aStreamsWindowStartsAtTwoChunksAndDoublesAsItReadsOn() throws Exception {
    ImageReader r =
        new ImageReader(
            img,
            new ChunkCache(512L * MIB),
            new ImageReader.Settings(8, 0, Duration.ofSeconds(20), 2));
    int step = 128 * 1024;
    try (ImageReader.Handle h = r.open()) {
      read(h, 0, step);
      read(h, step, step);
      assertEquals(nonZero(1, 3), h.held(), "a new stream holds the two chunks after its own");
      readOn(h, 2L * step, 2L * CHUNK, step); // an 8 MiB file: the window grew to four once
      assertEquals(nonZero(1, 6), r.stats().readAheadIssued(), "no more than four chunks ahead");
      readOn(h, 2L * CHUNK, 16L * CHUNK, step);
      assertEquals(
          nonZero(15, 24), h.held(), "the chunk being read, and the full window of eight after it");
      assertEquals(nonZero(1, 24), r.stats().readAheadIssued(), "each chunk fetched once");
    }
  }

  /** Reads [{@code from}, {@code to}) in order, {@code step} bytes at a time, checking each. */
  private void readOn(ImageReader.Handle h, long from, long to, int step) throws Exception {
    for (long off = from; off < to; off += step) {
      assertArrayEquals(Arrays.copyOfRange(image, (int) off, (int) off + step), read(h, off, step));
    }
  }

  private int nonZero(int from, int to) {
    int n = 0;
    for (int i = from; i < to; i++) {
      n += img.isZero(i) ? 0 : 1;
    }
    return n;
  }

  @Test
  void readAheadCoversItsBytesFromTheChunkAfterTheRead() throws Exception {
    ImageReader r =
        new ImageReader(
            img,
            new ChunkCache(256L * MIB),
            new ImageReader.Settings(2, 3L * CHUNK, Duration.ofSeconds(20)));
    try (ImageReader.Handle h = r.open()) {
      read(h, 0, CHUNK / 2);
      read(h, CHUNK / 2, CHUNK / 2); // ends at chunk 0's end: the window starts at chunk 1
      assertEquals(2, h.held(), "three chunks' bytes, 1 to 3, but the zero one: 1 and 3");
      assertArrayEquals(Arrays.copyOfRange(image, CHUNK, CHUNK + 100), read(h, CHUNK, 100));
      assertEquals(1, r.stats().readAheadHits());
      assertEquals(1, r.stats().cacheMisses(), "only chunk 0 was a demand fetch");
    }
  }

  @Test
  void aFailedReadAheadChunkIsFetchedAfreshByTheNextRead() throws Exception {
    Digest bad = img.digest(3);
    byte[] good = damage(bad);
    ImageReader r =
        new ImageReader(
            img,
            new ChunkCache(256L * MIB),
            new ImageReader.Settings(4, 0, Duration.ofSeconds(20)));
    try (ImageReader.Handle h = r.open()) {
      for (long off = 0;
          off < 3L * CHUNK;
          off += MIB) { // one stream, holding chunk 3 before it gets there
        read(h, off, 4096);
      }
      long fetches = store.reads(bad);
      assertThrows(IOException.class, () -> read(h, 3L * CHUNK, 4096));
      assertEquals(1, r.stats().errors());
      store.putRaw(bad, good);
      assertArrayEquals(
          Arrays.copyOfRange(image, 3 * CHUNK, 3 * CHUNK + 4096), read(h, 3L * CHUNK, 4096));
      assertTrue(store.reads(bad) > fetches, "fetched afresh");
    }
  }

  @Test
  void aFifthStreamEndsTheLeastRecentlyUsedRandomOneBeforeASequentialOne() throws Exception {
    ImageReader r =
        new ImageReader(
            img,
            new ChunkCache(256L * MIB),
            new ImageReader.Settings(1, 0, Duration.ofSeconds(20)));
    try (ImageReader.Handle h = r.open()) {
      for (int c : new int[] {0, 6, 12, 18}) { // four sequential streams, each holding chunk c + 1
        read(h, (long) c * CHUNK, 4096);
        read(h, (long) c * CHUNK + 4096, 4096);
      }
      assertEquals(4, h.held());
      read(h, 24L * CHUNK, 4096); // a fifth stream: the least recently used (at 0) ends
      assertEquals(3, h.held());
      read(h, 6L * CHUNK + 8192, 4096); // the stream at 6 goes on
      read(h, 27L * CHUNK, 4096); // a sixth: the random one at 24 ends, not a sequential one
      assertEquals(3, h.held());
      long hits = r.stats().readAheadHits();
      long issued = r.stats().readAheadIssued();
      for (int c : new int[] {6, 12, 18}) { // each stream goes on into the chunk it holds
        for (long off = MIB; off <= CHUNK; off += MIB) {
          read(h, (long) c * CHUNK + off, 4096);
        }
      }
      assertEquals(
          hits + 3, r.stats().readAheadHits(), "the streams at 6, 12 and 18 kept their read-ahead");
      assertEquals(issued, r.stats().readAheadIssued(), "no stream had to start over");
    }
  }

  @Test
  void aReadKeepsNoReferenceToTheChunksItServedEvenWhenItFails() throws Exception {
    ChunkCache cache = new ChunkCache(2L * (CHUNK + 65536) + 1000); // two chunks
    ImageReader r =
        new ImageReader(img, cache, new ImageReader.Settings(0, 0, Duration.ofSeconds(20)));
    damage(img.digest(3));
    try (ImageReader.Handle h = r.open()) {
      read(h, 0, 100); // fetched
      read(h, 10, 100); // from the cache
      read(h, 4L * CHUNK, 100);
      // chunk 3 fails, chunk 4 (cached) was taken for the same read
      assertThrows(IOException.class, () -> read(h, 4L * CHUNK - 10, 20));
      Chunk first = cache.get(img.digest(0));
      Chunk fourth = cache.get(img.digest(4));
      for (int c : new int[] {6, 7, 9, 10, 12, 13}) { // until both are evicted
        for (int k = 0; k < 4; k++) {
          read(h, (long) c * CHUNK + k, 100);
        }
      }
      for (Chunk c : new Chunk[] {first, fourth}) {
        assertFalse(cache.contains(c.digest()));
        c.release();
        assertFalse(c.retain(), "a read kept a reference to " + c);
      }
    }
  }

  @Test
  void aReadAheadWindowPastTheEndStopsAtTheLastChunk() throws Exception {
    ImageReader r =
        new ImageReader(
            img,
            new ChunkCache(256L * MIB),
            new ImageReader.Settings(1, 1L << 40, Duration.ofSeconds(20)));
    try (ImageReader.Handle h = r.open()) {
      read(h, 0, 4096);
      read(h, 4096, 4096);
      assertEquals(
          20,
          h.held(),
          "every chunk after the first, the 1000-byte last one too, but the zero ones");
    }
  }

  @Test
  void aReadThatMissesItsStreamByExactlyTheSlackStillContinuesIt() throws Exception {
    ImageReader r = reader(256L * MIB, 4);
    try (ImageReader.Handle h = r.open()) {
      read(h, 0, 4096);
      read(h, 4096 + MIB, 4096); // a gap of the slack exactly
      assertTrue(h.held() > 0, "the second read made the stream sequential");
    }
  }
}
