package dev.thaw.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.format.Digest;
import dev.thaw.testing.TestStores;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(60)
class MirrorStoreTest {
  private static final int MAX = 1 << 20;
  @TempDir Path dir;

  private final Digest onlyInB = Digest.parse("11".repeat(32));
  private final Digest inBoth = Digest.parse("22".repeat(32));
  private final Digest nowhere = Digest.parse("33".repeat(32));

  private void fill(Path a, Path b) throws Exception {
    WritableStore sa = TestStores.openWritable(a.toString());
    WritableStore sb = TestStores.openWritable(b.toString());
    sa.writeChunk(inBoth, new byte[] {1});
    sb.writeChunk(inBoth, new byte[] {2});
    sb.writeChunk(onlyInB, new byte[] {3});
    for (WritableStore s : List.of(sa, sb)) {
      String t = s == sa ? "2025-01-01T00:00:00Z" : "2025-01-02T00:00:00Z";
      try (WritableStore.SnapshotWriter w = s.createSnapshot(SnapshotPath.parse("vm/1/" + t))) {
        w.writeFile("index.json.blob", new byte[] {9});
        w.commit();
      }
    }
  }

  @Test
  void readsTheFirstStoreThatHasIt() throws Exception {
    Path a = dir.resolve("a");
    Path b = dir.resolve("b");
    fill(a, b);
    try (ChunkStore m =
        TestStores.open(List.of(a.toString(), b.toString()), Stores.Options.defaults(2))) {
      assertArrayEquals(new byte[] {1}, m.readChunk(inBoth, MAX));
      assertArrayEquals(new byte[] {3}, m.readChunk(onlyInB, MAX));
      NotFoundException nf = assertThrows(NotFoundException.class, () -> m.readChunk(nowhere, MAX));
      assertTrue(
          nf.getMessage().contains(a.toString()) && nf.getMessage().contains(b.toString()),
          nf.getMessage());
      assertEquals(2, m.listSnapshots().size(), "snapshots are the union of the mirrors");
    }
  }

  @Test
  void aStoreThatIsDownIsSkippedAndTheFailureIsRetryableOnlyIfSomeStoreMayRecover()
      throws Exception {
    Path b = dir.resolve("b");
    fill(dir.resolve("a"), b);
    int port;
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      port = s.getLocalPort(); // closed again: connections are refused
    }
    Stores.Options o =
        Stores.Options.defaults(2).withTimeouts(Duration.ofSeconds(2), Duration.ofSeconds(2));
    try (ChunkStore m =
        TestStores.open(List.of("http://127.0.0.1:" + port + "/ds/", b.toString()), o)) {
      assertArrayEquals(new byte[] {3}, m.readChunk(onlyInB, MAX));
      StoreException e = assertThrows(StoreException.class, () -> m.readChunk(nowhere, MAX));
      assertFalse(e instanceof NotFoundException, "one store was down: the chunk may exist there");
      assertTrue(e.retryable());
      assertTrue(e.getMessage().contains("cannot connect"), e.getMessage());
    }
  }

  @Test
  void theRateLimitHoldsForAllReadsTogether() throws Exception {
    Path a = dir.resolve("a");
    WritableStore s = TestStores.openWritable(a.toString());
    Digest d1 = Digest.parse("44".repeat(32));
    Digest d2 = Digest.parse("55".repeat(32));
    s.writeChunk(d1, new byte[256 * 1024]);
    s.writeChunk(d2, new byte[256 * 1024]);
    try (ChunkStore limited =
        TestStores.open(
            List.of(a.toString()), Stores.Options.defaults(2).withRateLimit(256 * 1024))) {
      long t0 = System.nanoTime();
      Thread t =
          new Thread(
              () -> {
                try {
                  limited.readChunk(d2, MAX);
                } catch (Exception e) {
                  throw new RuntimeException(e);
                }
              });
      t.start();
      limited.readChunk(d1, MAX);
      t.join();
      double seconds = (System.nanoTime() - t0) / 1e9;
      // 512 KiB at 256 KiB/s, less the first quarter second of burst: at least 1.5 s however fast
      // the machine is (a lower bound only: a slow machine cannot make this fail)
      assertTrue(
          seconds >= 1.5, "two concurrent reads of 256 KiB at 256 KiB/s took " + seconds + " s");
    }
  }

  @Test
  void aCopyThatFailsVerificationIsFetchedAgainFromTheNextMirror() throws Exception {
    byte[] data = new byte[100_000];
    new java.util.Random(5).nextBytes(data);
    dev.thaw.format.BlobCodec codec = new dev.thaw.format.BlobCodec(null);
    Digest d = codec.digest(data, 0, data.length);
    byte[] blob = codec.encode(data, 0, data.length, true);
    byte[] bad = blob.clone();
    bad[bad.length - 1] ^= 1; // a bit flipped on the first mirror's disk
    Path a = dir.resolve("a");
    Path b = dir.resolve("b");
    TestStores.openWritable(a.toString()).writeChunk(d, bad);
    TestStores.openWritable(b.toString()).writeChunk(d, blob);
    try (ChunkStore m =
            TestStores.open(List.of(a.toString(), b.toString()), Stores.Options.defaults(2));
        dev.thaw.fetch.FetchPipeline p =
            new dev.thaw.fetch.FetchPipeline(m, 2, 1, dev.thaw.fetch.RetryPolicy.defaults())) {
      dev.thaw.fetch.Chunk c = p.fetch(d, data.length, codec, dev.thaw.fetch.Priority.DEMAND).get();
      assertArrayEquals(data, c.toArray());
    }
  }
}
