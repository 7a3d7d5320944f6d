package dev.thaw.fetch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;
import dev.thaw.format.BlobCodec;
import dev.thaw.format.ChunkCodec;
import dev.thaw.format.Digest;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.ForwardingChunkStore;
import dev.thaw.store.StoreException;
import dev.thaw.testing.MemoryStore;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class FetchPipelineTest {
  private static final RetryPolicy FAST =
      new RetryPolicy(4, Duration.ofMillis(1), Duration.ofMillis(5));
  private final BlobCodec codec = new BlobCodec(null);
  private final MemoryStore store = new MemoryStore();
  private final List<FetchPipeline> pipelines = new ArrayList<>();

  @AfterEach
  void close() {
    pipelines.forEach(FetchPipeline::close);
  }

  private FetchPipeline pipeline(int parallel) {
    FetchPipeline p = new FetchPipeline(store, parallel, 2, FAST);
    pipelines.add(p);
    return p;
  }

  private byte[] data(int i) {
    byte[] d = new byte[64 * 1024];
    new Random(i).nextBytes(d);
    return d;
  }

  private Digest put(int i) {
    byte[] d = data(i);
    Digest digest = codec.digest(d, 0, d.length);
    store.writeChunk(digest, codec.encode(d, 0, d.length, true));
    return digest;
  }

  private static Throwable cause(CompletableFuture<?> f) {
    ExecutionException e =
        assertThrows(ExecutionException.class, () -> f.get(30, TimeUnit.SECONDS));
    return e.getCause();
  }

  @Test
  void aFetchEndsAsANamedFailureWhateverTheStoreThrowsAndTheThreadLivesOn() throws Exception {
    Digest bad = put(20);
    Digest good = put(21);
    store.fault =
        (dg, a) -> {
          if (dg.equals(bad)) {
            throw new OutOfMemoryError("Required array size too large");
          }
        };
    FetchPipeline p = pipeline(1); // one fetch thread: it must survive the Error
    Throwable t = cause(p.fetch(bad, 65536, codec, Priority.DEMAND));
    assertInstanceOf(ChunkFetchException.class, t);
    assertTrue(
        t.getMessage().contains(bad.hex()) && t.getMessage().contains("Required array size"),
        t.getMessage());
    assertArrayEquals(
        data(21), p.fetch(good, 65536, codec, Priority.DEMAND).get(30, TimeUnit.SECONDS).toArray());
    store.fault = (dg, a) -> {};
    assertArrayEquals(
        data(20),
        p.fetch(bad, 65536, codec, Priority.DEMAND).get(30, TimeUnit.SECONDS).toArray(),
        "the failed fetch is not remembered: a repaired chunk reads");
    assertEquals(0, p.stats().inFlight());
  }

  @Test
  void aStoredChunkLargerThanItsCodecAllowsIsABadChunk() throws Exception {
    Digest d = Digest.parse("ef".repeat(32));
    store.writeChunk(d, new byte[codec.maxStoredLength(65536) + 1]);
    Throwable t = cause(pipeline(2).fetch(d, 65536, codec, Priority.DEMAND));
    assertInstanceOf(ChunkFetchException.class, t);
    assertTrue(t.getMessage().contains("more than the"), t.getMessage());
  }

  @Test
  void fetchesAndVerifies() throws Exception {
    Digest d = put(1);
    Chunk c = pipeline(4).fetch(d, 65536, codec, Priority.BACKGROUND).get();
    assertArrayEquals(data(1), c.toArray());
    assertEquals(1, store.reads(d));
  }

  @Test
  void singleFlightSharesOneFetch() throws Exception {
    Digest d = put(2);
    CountDownLatch release = new CountDownLatch(1);
    store.fault =
        (dg, a) -> {
          try {
            release.await();
          } catch (InterruptedException e) {
            throw new java.io.InterruptedIOException();
          }
        };
    FetchPipeline p = pipeline(8);
    List<CompletableFuture<Chunk>> fs = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      fs.add(p.fetch(d, 65536, codec, Priority.BACKGROUND));
    }
    release.countDown();
    for (CompletableFuture<Chunk> f : fs) {
      assertArrayEquals(data(2), f.get().toArray());
    }
    assertEquals(1, store.reads(d));
    assertEquals(9, p.stats().joined());
  }

  @Test
  void aChunkJoinedByManyCallersKeepsItsBytesUntilEachOfThemReleasedIt() throws Exception {
    Digest d = put(30);
    CountDownLatch release = new CountDownLatch(1);
    store.fault =
        (dg, a) -> {
          if (dg.equals(d)) {
            try {
              release.await();
            } catch (InterruptedException e) {
              throw new java.io.InterruptedIOException();
            }
          }
        };
    FetchPipeline p = pipeline(4);
    List<CompletableFuture<Chunk>> fs = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      fs.add(p.fetch(d, 65536, codec, Priority.BACKGROUND));
    }
    release.countDown();
    List<Chunk> held = new ArrayList<>();
    for (CompletableFuture<Chunk> f : fs) {
      held.add(f.get(30, TimeUnit.SECONDS));
    }
    Chunk last = held.get(4);
    for (int k = 0; k < 4; k++) {
      assertSame(last, held.get(k), "one fetch, one chunk");
      held.get(k).release(); // every caller but one is done with it
    }
    // chunks fetched meanwhile take the arrays that were given back
    for (int i = 0; i < 12; i++) {
      Chunk c = p.fetch(put(100 + i), 65536, codec, Priority.DEMAND).get(30, TimeUnit.SECONDS);
      assertArrayEquals(data(100 + i), c.toArray());
      c.release();
    }
    assertArrayEquals(data(30), last.toArray(), "a chunk one caller still holds keeps its bytes");
    long reused = p.pool().reused();
    last.release();
    Chunk next = p.fetch(put(200), 65536, codec, Priority.DEMAND).get(30, TimeUnit.SECONDS);
    assertSame(
        last.data(), next.data(), "once every caller gave it back, its array takes the next chunk");
    assertEquals(reused + 1, p.pool().reused());
    next.release();
  }

  @Test
  void boundsFetchesInFlight() throws Exception {
    store.fault =
        (d, a) -> {
          try {
            Thread.sleep(5);
          } catch (InterruptedException e) {
            throw new java.io.InterruptedIOException();
          }
        };
    FetchPipeline p = pipeline(3);
    List<CompletableFuture<Chunk>> fs = new ArrayList<>();
    for (int i = 0; i < 40; i++) {
      fs.add(p.fetch(put(100 + i), 65536, codec, Priority.BACKGROUND));
    }
    CompletableFuture.allOf(fs.toArray(new CompletableFuture<?>[0])).get();
    assertTrue(store.maxConcurrentReads() <= 3, "max concurrent " + store.maxConcurrentReads());
    assertEquals(3, store.maxConcurrentReads()); // and the slots were actually used
  }

  @Test
  void demandGoesBeforeReadAheadBeforeBackground() throws Exception {
    Digest blocker = put(3);
    CountDownLatch started = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    List<Digest> order = new CopyOnWriteArrayList<>();
    store.fault =
        (d, a) -> {
          order.add(d);
          if (d.equals(blocker)) {
            started.countDown();
            try {
              release.await();
            } catch (InterruptedException e) {
              throw new java.io.InterruptedIOException();
            }
          }
        };
    FetchPipeline p = pipeline(1);
    CompletableFuture<Chunk> first = p.fetch(blocker, 65536, codec, Priority.BACKGROUND);
    started.await();
    Digest bg = put(4);
    Digest ra = put(5);
    Digest demand = put(6);
    Digest lifted = put(7);
    List<CompletableFuture<Chunk>> fs =
        List.of(
            p.fetch(bg, 65536, codec, Priority.BACKGROUND),
            p.fetch(lifted, 65536, codec, Priority.BACKGROUND),
            p.fetch(ra, 65536, codec, Priority.READ_AHEAD),
            p.fetch(demand, 65536, codec, Priority.DEMAND),
            p.fetch(lifted, 65536, codec, Priority.DEMAND)); // joins and lifts the queued request
    release.countDown();
    first.get();
    for (CompletableFuture<Chunk> f : fs) {
      f.get();
    }
    // within a class, first come first served: the lifted request was queued before "demand"
    assertEquals(List.of(blocker, lifted, demand, ra, bg), order);
  }

  @Test
  void retriesTransientFaults() throws Exception {
    Digest d = put(8);
    store.fault =
        (dg, attempt) -> {
          if (attempt < 3) {
            throw new StoreException("HTTP 503 from mem", true);
          }
        };
    FetchPipeline p = pipeline(2);
    assertArrayEquals(data(8), p.fetch(d, 65536, codec, Priority.DEMAND).get().toArray());
    assertEquals(3, store.reads(d));
    assertEquals(2, p.stats().retries());
  }

  @Test
  void givesUpAfterBoundedRetriesAndDoesNotPoison() throws Exception {
    Digest d = put(9);
    store.fault =
        (dg, attempt) -> {
          throw new StoreException("connection reset", true);
        };
    FetchPipeline p = pipeline(2);
    Throwable t = cause(p.fetch(d, 65536, codec, Priority.DEMAND));
    ChunkFetchException e = assertInstanceOf(ChunkFetchException.class, t);
    assertTrue(
        e.getMessage().contains(d.hex()) && e.getMessage().contains("mem:.chunks/"),
        e.getMessage());
    assertEquals(FAST.attempts(), store.reads(d));
    store.fault = (dg, attempt) -> {};
    assertArrayEquals(data(9), p.fetch(d, 65536, codec, Priority.DEMAND).get().toArray());
  }

  @Test
  void missingChunkFailsAtOnce() {
    byte[] x = data(10);
    Digest d = codec.digest(x, 0, x.length);
    ChunkFetchException e =
        assertInstanceOf(
            ChunkFetchException.class, cause(pipeline(2).fetch(d, 65536, codec, Priority.DEMAND)));
    assertTrue(e.missing());
    assertEquals(1, store.reads(d));
  }

  @Test
  void corruptBodyIsRefetchedOnceThenFails() throws Exception {
    Digest d = put(11);
    byte[] good = store.raw(d);
    byte[] bad = good.clone();
    bad[bad.length / 2] ^= 4;
    store.putRaw(d, bad);
    FetchPipeline p = pipeline(2);
    ChunkFetchException e =
        assertInstanceOf(
            ChunkFetchException.class, cause(p.fetch(d, 65536, codec, Priority.DEMAND)));
    assertTrue(e.getMessage().contains("CRC"), e.getMessage());
    assertEquals(2, store.reads(d));
    // damaged in transit only once: the refetch delivers
    store.putRaw(d, bad);
    store.fault =
        (dg, attempt) -> {
          if (attempt == 4) {
            store.putRaw(d, good);
          }
        };
    assertArrayEquals(data(11), p.fetch(d, 65536, codec, Priority.DEMAND).get().toArray());
  }

  @Test
  void zeroChunksAreNeverFetched() throws Exception {
    int len = 4 * 1024 * 1024;
    Digest zero = codec.zeroDigest(len);
    FetchPipeline p = pipeline(2);
    Chunk c = p.fetch(zero, len, codec, Priority.DEMAND).get();
    assertTrue(c.isZero());
    assertEquals(0, store.totalReads());
    byte[] out = new byte[10];
    out[3] = 7;
    c.copyTo(100, out, 0, 10);
    assertArrayEquals(new byte[10], out);
    assertSame(null, c.data());
  }

  @Test
  void wrongLengthIsAnError() {
    Digest d = put(12);
    assertInstanceOf(
        ChunkFetchException.class, cause(pipeline(1).fetch(d, 1000, codec, Priority.DEMAND)));
  }

  @Test
  void aBodyThatFailsVerificationIsFetchedAgainFromTheNextCopy() throws Exception {
    Digest d = put(13);
    byte[] bad = store.raw(d).clone();
    bad[bad.length / 2] ^= 4;
    MemoryStore damaged = new MemoryStore();
    damaged.putRaw(d, bad);
    // the first copy is damaged; the store's other copy (a mirror) is good
    ChunkStore mirrors =
        new ForwardingChunkStore(damaged) {
          @Override
          public Buffer readChunkAgain(Digest digest, int maxBytes, BufferPool pool)
              throws IOException {
            return store.readChunk(digest, maxBytes, pool);
          }
        };
    FetchPipeline p = new FetchPipeline(mirrors, 2, 1, FAST);
    pipelines.add(p);
    assertArrayEquals(
        data(13), p.fetch(d, 65536, codec, Priority.DEMAND).get(30, TimeUnit.SECONDS).toArray());
    assertEquals(1, damaged.reads(d), "the first read goes to the first copy");
    assertEquals(1, store.reads(d), "the refetch to the other copy");
    assertEquals(1, p.stats().retries());
  }

  @Test
  void aDecoderThatThrowsFailsItsFetchNamedAndTheDecodersGoOn() throws Exception {
    Digest d = put(14);
    ChunkCodec broken =
        new ChunkCodec() {
          @Override
          public byte[] decodeChunk(byte[] stored, Digest expected, int expectedLength) {
            throw new IllegalStateException("decoder bug");
          }

          @Override
          public boolean isZero(Digest digest, int length) {
            return false;
          }
        };
    FetchPipeline p = new FetchPipeline(store, 1, 1, FAST); // two decode slots in all
    pipelines.add(p);
    for (int i = 0; i < 5; i++) { // more than the decode slots: each failure gives its slot back
      ChunkFetchException e =
          assertInstanceOf(
              ChunkFetchException.class, cause(p.fetch(d, 65536, broken, Priority.BACKGROUND)));
      assertTrue(
          e.getMessage().contains(d.hex()) && e.getMessage().contains("decoder bug"),
          e.getMessage());
    }
    assertArrayEquals(
        data(14),
        p.fetch(d, 65536, codec, Priority.BACKGROUND).get(30, TimeUnit.SECONDS).toArray());
    assertEquals(5, p.stats().errors());
  }

  @Test
  void statsCountWhatWasFetchedDecodedAndHowLongAReadTook() throws Exception {
    Digest d = put(15);
    store.fault =
        (dg, a) -> {
          try {
            Thread.sleep(30);
          } catch (InterruptedException e) {
            throw new java.io.InterruptedIOException();
          }
        };
    FetchPipeline p = pipeline(1);
    p.fetch(d, 65536, codec, Priority.DEMAND).get(30, TimeUnit.SECONDS).release();
    p.fetch(codec.zeroDigest(65536), 65536, codec, Priority.DEMAND).get(30, TimeUnit.SECONDS);
    PipelineStats s = p.stats();
    assertEquals(1, s.fetched());
    assertEquals(store.raw(d).length, s.bytesFetched());
    assertEquals(65536, s.bytesDecoded());
    assertEquals(1, s.zeroChunks());
    assertTrue(
        s.latencyP50Micros() >= 20_000 && s.latencyP50Micros() < 10_000_000,
        "p50 " + s.latencyP50Micros());
    assertSame(store, p.store());
  }

  @Test
  void aClosedPipelineRefusesFetchesAndItsThreadsNeverHoldTheJvm() throws Exception {
    FetchPipeline p = pipeline(3);
    assertEquals(
        3 + 2 * 4, p.maxChunksInMemory(), "fetches in flight and two blobs per decode slot");
    assertEquals(11L * BufferPool.capacityFor(4 << 20), FetchPipeline.poolBytes(3, 2));
    long fetchThreads =
        Thread.getAllStackTraces().keySet().stream()
            .filter(t -> t.getName().startsWith("thaw-fetch-"))
            .peek(t -> assertTrue(t.isDaemon(), t.getName()))
            .count();
    assertTrue(fetchThreads >= 3, "fetch threads: " + fetchThreads);
    p.close();
    assertInstanceOf(
        IllegalStateException.class, cause(p.fetch(put(16), 65536, codec, Priority.DEMAND)));
  }

  @Test
  void blobsWaitingForASlowDecoderAreBoundedAndHoldBackTheStoreReads() throws Exception {
    CountDownLatch decoding = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    ChunkCodec slow =
        new ChunkCodec() {
          @Override
          public byte[] decodeChunk(byte[] stored, Digest expected, int expectedLength)
              throws dev.thaw.format.FormatException {
            decoding.countDown();
            try {
              release.await();
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
            return codec.decodeChunk(stored, expected, expectedLength);
          }

          @Override
          public boolean isZero(Digest digest, int length) {
            return false;
          }
        };
    FetchPipeline p = new FetchPipeline(store, 1, 1, FAST); // one decoder, two decode slots
    pipelines.add(p);
    List<CompletableFuture<Chunk>> fs = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      fs.add(p.fetch(put(30 + i), 65536, slow, Priority.BACKGROUND));
    }
    assertTrue(decoding.await(30, TimeUnit.SECONDS));
    Thread.sleep(200);
    // one blob decoding, one waiting for the decoder, one read and waiting for a slot
    assertEquals(3, store.totalReads(), "blobs read while the decoder is stuck");
    release.countDown();
    for (int i = 0; i < 6; i++) {
      assertArrayEquals(data(30 + i), fs.get(i).get(30, TimeUnit.SECONDS).toArray());
    }
  }
}
