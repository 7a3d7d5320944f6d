package dev.thaw.restore;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.RetryPolicy;
import dev.thaw.image.ChunkCache;
import dev.thaw.image.ImageReader;
import dev.thaw.image.KeyPolicy;
import dev.thaw.image.Snapshot;
import dev.thaw.store.SnapshotPath;
import dev.thaw.testing.Fixtures;
import dev.thaw.testing.MemoryStore;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(120)
class LiveRestoreTest {
  private static final int MIB = Fixtures.MIB;
  @TempDir Path dir;

  private final MemoryStore store = new MemoryStore();

  private LiveRestore open(FetchPipeline p, SnapshotPath snap, Path target, boolean background)
      throws IOException {
    ImageReader r =
        new ImageReader(
            Snapshot.open(store, snap, KeyPolicy.strict(null)).openImage("a.img", p),
            new ChunkCache(64L * MIB),
            new ImageReader.Settings(4, 0, Duration.ofSeconds(30)));
    return LiveRestore.open(
        r, target, Restorer.defaultStateFile(target), new LiveRestore.Options(background, 4, 0));
  }

  @Test
  void anOverlayCompletesAChunkBeforeAWriteAndKeepsItAcrossARestart() throws Exception {
    byte[] image = Fixtures.image(5, 777, 3);
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    Path target = dir.resolve("ovl.img");
    byte[] expected = image.clone();
    try (FetchPipeline p = new FetchPipeline(store, 4, 2, RetryPolicy.defaults())) {
      try (LiveRestore live = open(p, snap, target, false)) {
        byte[] w = "written by the guest".getBytes(StandardCharsets.UTF_8);
        live.write(4 * MIB + 100, w, 0, w.length); // into chunk 1, not yet present
        System.arraycopy(w, 0, expected, 4 * MIB + 100, w.length);
        byte[] z = new byte[] {9, 9, 9};
        live.write(8 * MIB + 5, z, 0, 3); // into zero chunk 2: nothing to fetch
        System.arraycopy(z, 0, expected, 8 * MIB + 5, 3);
        assertEquals(2, live.progress().present());
      }
      int readsBefore = store.totalReads();
      try (LiveRestore live = open(p, snap, target, false)) {
        assertEquals(2, live.progress().present(), "the restart keeps what was recorded");
        ImageReader reader =
            new ImageReader(
                live.image(),
                new ChunkCache(64L * MIB),
                new ImageReader.Settings(0, 0, Duration.ofSeconds(30)));
        byte[] all = new byte[image.length];
        try (ImageReader.Handle h = reader.open()) {
          int n =
              live.read(
                  h,
                  0,
                  all.length,
                  (at, data, from, len) -> {
                    if (data == null) {
                      java.util.Arrays.fill(all, at, at + len, (byte) 0);
                    } else {
                      System.arraycopy(data, from, all, at, len);
                    }
                  });
          assertEquals(image.length, n);
        }
        assertArrayEquals(expected, all);
        // chunk 1 came from the target: reads of the store are of the other chunks only
        assertEquals(readsBefore + 3, store.totalReads());
      }
    }
    // the overlay file has the image's size (its sparseness is checked end to end, with du)
    assertEquals(image.length, Files.size(target));
  }

  @Test
  void zeroingOrDiscardingWholeChunksFetchesNothingAndIsKeptAcrossARestart() throws Exception {
    byte[] image = Fixtures.image(5, 777, 6); // chunk 2 is zero; chunk 5 is 777 bytes
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    Path target = dir.resolve("zeroed.img");
    byte[] expected = image.clone();
    try (FetchPipeline p = new FetchPipeline(store, 4, 2, RetryPolicy.defaults())) {
      try (LiveRestore live = open(p, snap, target, false)) {
        int reads = store.totalReads();
        live.writeZeros(4 * MIB, 4 * MIB); // chunk 1, whole
        live.discard(12 * MIB, 8 * MIB + 777); // chunks 3 to 5, whole
        live.discard(100, 4096); // part of chunk 0: a hint, ignored
        assertEquals(reads, store.totalReads(), "nothing fetched");
        assertEquals(4, live.progress().present());
        live.writeZeros(4 * MIB - 10, 20); // the end of chunk 0 (fetched first) and chunk 1
        assertEquals(reads + 1, store.totalReads());
        Arrays.fill(expected, 4 * MIB - 10, 8 * MIB, (byte) 0);
        Arrays.fill(
            expected, 12 * MIB, expected.length, (byte) 0); // a new target's holes read as zeros
        assertThrows(IOException.class, () -> live.writeZeros(image.length - 1, 2));
      }
      int reads = store.totalReads();
      try (LiveRestore live = open(p, snap, target, false)) {
        assertEquals(5, live.progress().present(), "the restart keeps what was recorded");
        ImageReader reader =
            new ImageReader(
                live.image(),
                new ChunkCache(64L * MIB),
                new ImageReader.Settings(0, 0, Duration.ofSeconds(30)));
        byte[] all = new byte[image.length];
        try (ImageReader.Handle h = reader.open()) {
          live.read(
              h,
              0,
              all.length,
              (at, data, from, len) -> {
                if (data != null) {
                  System.arraycopy(data, from, all, at, len);
                }
              });
        }
        assertArrayEquals(expected, all);
        assertEquals(reads, store.totalReads(), "the zero chunk 2 needs no fetch either");
      }
    }
  }

  @Test
  void theBackgroundRestoreFinishesWithTheGuestsWrites() throws Exception {
    byte[] image = Fixtures.image(6, 4096, 4);
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    Path target = dir.resolve("live.img");
    byte[] expected = image.clone();
    try (FetchPipeline p = new FetchPipeline(store, 4, 2, RetryPolicy.defaults());
        LiveRestore live = open(p, snap, target, true)) {
      byte[] whole = new byte[4 * MIB];
      java.util.Arrays.fill(whole, (byte) 7);
      dev.thaw.format.Digest first = live.image().digest(0);
      live.write(0, whole, 0, whole.length); // covers chunk 0 whole: no fetch needed
      System.arraycopy(whole, 0, expected, 0, whole.length);
      live.start(); // (as a mount does once it answers)
      long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
      while (!live.progress().complete() && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertTrue(live.progress().complete(), "background restore did not complete");
      assertEquals(
          0,
          store.reads(first),
          "a write covering a chunk whole fetches nothing, nor does the background after it");
    }
    assertArrayEquals(expected, Files.readAllBytes(target));
  }

  @Test
  void refusesAStateFileOfAnotherImageAndATargetWithoutState() throws Exception {
    SnapshotPath a = Fixtures.backup(store, dir, Fixtures.image(2, 0, 5), null);
    Thread.sleep(1100);
    SnapshotPath b = Fixtures.backup(store, dir, Fixtures.image(3, 0, 6), null);
    Path target = dir.resolve("t.img");
    try (FetchPipeline p = new FetchPipeline(store, 4, 2, RetryPolicy.defaults())) {
      open(p, a, target, false).close();
      IOException e = assertThrows(IOException.class, () -> open(p, b, target, false));
      assertTrue(e.getMessage().contains("different image"), e.getMessage());
      Files.delete(Restorer.defaultStateFile(target));
      IOException e2 = assertThrows(IOException.class, () -> open(p, a, target, false));
      assertTrue(e2.getMessage().contains("has no state file"), e2.getMessage());
    }
  }
}
