package dev.thaw.restore;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.RetryPolicy;
import dev.thaw.image.CasyncImage;
import dev.thaw.image.ChunkCache;
import dev.thaw.image.Image;
import dev.thaw.image.ImageReader;
import dev.thaw.image.KeyPolicy;
import dev.thaw.image.Snapshot;
import dev.thaw.store.SnapshotPath;
import dev.thaw.testing.CasyncFixtures;
import dev.thaw.testing.Fixtures;
import dev.thaw.testing.MemoryStore;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
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
          // from chunk 1 in the target, through the read buffer in slices, the last one short
          byte[] part = new byte[200 * 1024 + 7];
          assertEquals(
              part.length,
              live.read(
                  h,
                  4 * MIB + 50,
                  part.length,
                  (at, data, from, len) -> System.arraycopy(data, from, part, at, len)));
          assertArrayEquals(
              Arrays.copyOfRange(expected, 4 * MIB + 50, 4 * MIB + 50 + part.length), part);
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
      assertFalse(
          Files.exists(Restorer.defaultStateFile(target)), "a refused open leaves no state file");
    }
  }

  /** A casync image of small chunks: {@code size} bytes in well over 64 chunks. */
  private Image smallChunks(FetchPipeline p, int size, long seed) throws IOException {
    byte[] image = CasyncFixtures.image(size, 8192, seed);
    CasyncFixtures.Chunks chunks =
        CasyncFixtures.chunk(image, 2048, 8192, true, CasyncFixtures.Compression.NONE, store, seed);
    smallImage = image;
    return CasyncImage.open("small.caibx", CasyncFixtures.index(chunks, 2048, 4096, 8192, true), p);
  }

  private byte[] smallImage;

  private static LiveRestore open(Image img, Path target, boolean background, Channels channels)
      throws IOException {
    ImageReader r =
        new ImageReader(
            img, new ChunkCache(64L * MIB), new ImageReader.Settings(4, 0, Duration.ofSeconds(30)));
    return LiveRestore.open(
        r,
        target,
        Restorer.defaultStateFile(target),
        new LiveRestore.Options(background, 4, 0),
        channels);
  }

  /** The chunks the state file on disk records now (read from a copy: the original is locked). */
  private boolean[] recorded(Image img, Path target) throws IOException {
    Path copy = dir.resolve("state-copy");
    Files.copy(Restorer.defaultStateFile(target), copy, StandardCopyOption.REPLACE_EXISTING);
    boolean[] present = new boolean[img.chunkCount()];
    try (RestoreState st =
        RestoreState.open(copy, img.index().checksum(), img.size(), img.chunkCount())) {
      for (int i = 0; i < present.length; i++) {
        present[i] = st.isPresent(i);
      }
    }
    return present;
  }

  private static byte[] readAll(LiveRestore live, Image img) throws IOException {
    ImageReader reader =
        new ImageReader(
            img, new ChunkCache(64L * MIB), new ImageReader.Settings(0, 0, Duration.ofSeconds(30)));
    byte[] all = new byte[(int) img.size()];
    try (ImageReader.Handle h = reader.open()) {
      assertEquals(
          all.length,
          live.read(
              h,
              0,
              all.length,
              (at, data, from, len) -> {
                if (data != null) {
                  System.arraycopy(data, from, all, at, len);
                }
              }));
    }
    return all;
  }

  @Test
  void aWriteReturnsOnlyOnceItsChunksAreRecordedAfterASyncAlsoPastTheFirst64() throws Exception {
    try (FetchPipeline p = new FetchPipeline(store, 4, 2, RetryPolicy.defaults())) {
      Image img = smallChunks(p, 1 << 20, 11);
      assertTrue(img.chunkCount() > 150, "chunks: " + img.chunkCount());
      Path target = dir.resolve("small.img");
      RecordingChannels io = new RecordingChannels(target);
      byte[] expected = smallImage.clone();
      byte[] again = "twice into one chunk".getBytes(StandardCharsets.UTF_8);
      int k = 130; // in the third word of the chunk bitmap
      long at = img.index().start(k) + img.index().length(k) / 2;
      int len =
          (int) (img.index().end(k + 2) - at) - 100; // the rest of k, k + 1 whole, most of k + 2
      byte[] w = new byte[len];
      new java.util.Random(5).nextBytes(w);
      try (LiveRestore live = open(img, target, false, io)) {
        live.write(at, w, 0, len);
        System.arraycopy(w, 0, expected, (int) at, len);
        boolean[] rec = recorded(img, target);
        for (int i = 0; i < rec.length; i++) {
          assertEquals(
              i >= k && i <= k + 2, rec[i], "chunk " + i + " recorded when the write returned");
        }
        io.assertSyncedBeforeEachRecord();
        // a discard of a whole chunk and zeros over part of one are recorded before they return too
        int d = k + 10;
        int z = k + 12;
        live.discard(img.index().start(d), img.index().length(d));
        Arrays.fill(
            expected,
            (int) img.index().start(d),
            (int) img.index().end(d),
            (byte) 0); // a new target's hole
        assertTrue(
            recorded(img, target)[d], "a discarded chunk recorded when the discard returned");
        live.writeZeros(img.index().start(z) + 1, 5);
        Arrays.fill(
            expected, (int) img.index().start(z) + 1, (int) img.index().start(z) + 6, (byte) 0);
        assertTrue(recorded(img, target)[z], "a zeroed chunk recorded when the call returned");
        io.assertSyncedBeforeEachRecord();

        // a second write into a recorded chunk, over part of the first: no sync, no record
        io.clear();
        long at2 = img.index().start(k + 1) + 7;
        live.write(at2, again, 0, again.length);
        System.arraycopy(again, 0, expected, (int) at2, again.length);
        assertFalse(io.events().isEmpty());
        for (RecordingChannels.Event e : io.events()) {
          assertTrue(
              e.is(true, RecordingChannels.Kind.WRITE),
              "a write into a recorded chunk only writes: " + e);
        }
        assertArrayEquals(expected, readAll(live, img));
        assertEquals(5, live.progress().present());
      }
      byte[] onDisk = Files.readAllBytes(target);
      assertArrayEquals(
          Arrays.copyOfRange(expected, (int) img.index().start(k), (int) img.index().end(k + 2)),
          Arrays.copyOfRange(onDisk, (int) img.index().start(k), (int) img.index().end(k + 2)));
      RecordingChannels io2 = new RecordingChannels(target);
      try (LiveRestore live = open(img, target, false, io2)) {
        assertEquals(5, live.progress().present(), "the restart keeps the recorded chunks");
        for (int i = 0; i < img.chunkCount(); i++) {
          assertEquals(
              (i >= k && i <= k + 2) || i == k + 10 || i == k + 12,
              live.isPresent(i),
              "chunk " + i);
        }
        assertArrayEquals(expected, readAll(live, img));
        io2.clear();
        live.write(img.index().start(k + 2), again, 0, again.length); // recorded before the restart
        System.arraycopy(again, 0, expected, (int) img.index().start(k + 2), again.length);
        for (RecordingChannels.Event e : io2.events()) {
          assertTrue(
              e.is(true, RecordingChannels.Kind.WRITE),
              "a chunk recorded before the restart needs no record: " + e);
        }
        // reads from the middle of a chunk in the target into the middle of one from the backup
        ImageReader reader =
            new ImageReader(
                img,
                new ChunkCache(64L * MIB),
                new ImageReader.Settings(0, 0, Duration.ofSeconds(30)));
        try (ImageReader.Handle h = reader.open()) {
          long from = img.index().start(k + 2) + 3;
          int span = (int) (img.index().start(k + 3) + 5 - from);
          byte[] got = new byte[span];
          assertEquals(
              span,
              live.read(h, from, span, (a, data, f, n) -> System.arraycopy(data, f, got, a, n)));
          assertArrayEquals(Arrays.copyOfRange(expected, (int) from, (int) from + span), got);
          byte[] tail = new byte[10];
          assertEquals(
              10,
              live.read(
                  h,
                  img.size() - 10,
                  100,
                  (a, data, f, n) -> System.arraycopy(data, f, tail, a, n)),
              "a read past the end stops at the end");
          assertArrayEquals(
              Arrays.copyOfRange(expected, expected.length - 10, expected.length), tail);
          assertEquals(0, live.read(h, img.size(), 100, (a, data, f, n) -> {}));
        }
        // the last bytes of the image may be written and zeroed, not one past them
        live.write(img.size() - 4, again, 0, 4);
        System.arraycopy(again, 0, expected, expected.length - 4, 4);
        IOException past =
            assertThrows(IOException.class, () -> live.write(img.size() - 3, again, 0, 4));
        assertTrue(past.getMessage().contains("past the end"), past.getMessage());
        int last = img.chunkCount() - 1;
        live.writeZeros(
            img.index().start(last - 1),
            img.index().length(last - 1) + img.index().length(last) - 8);
        Arrays.fill(expected, (int) img.index().start(last - 1), expected.length - 8, (byte) 0);
        assertThrows(IOException.class, () -> live.writeZeros(img.size() - 1, 2));
        assertArrayEquals(expected, readAll(live, img));
      }
    }
  }

  /** Waits until the background restore of {@code live} has ended (its duration stands still). */
  private static void awaitBackgroundEnd(LiveRestore live) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    long last = -1;
    while (System.nanoTime() < deadline) {
      LiveRestore.Progress pr = live.progress();
      if (pr.complete() && pr.backgroundNanos() > 0 && pr.backgroundNanos() == last) {
        return;
      }
      last = pr.backgroundNanos();
      Thread.sleep(20);
    }
    throw new AssertionError("the background restore did not end: " + live.progress());
  }

  @Test
  void theBackgroundRestoreWritesZerosOverATargetThatHeldOtherData() throws Exception {
    try (FetchPipeline p = new FetchPipeline(store, 4, 2, RetryPolicy.defaults())) {
      Image img = smallChunks(p, 2_000_000, 12);
      assertTrue(img.chunkCount() > 256, "every lock stripe in use: " + img.chunkCount());
      Path target = dir.resolve("dirty.img");
      byte[] dirt = new byte[(int) img.size()];
      Arrays.fill(dirt, (byte) 0x5a);
      Files.write(target, dirt);
      // an interrupted restore into this existing file left its state: nothing done, not zeroed
      try (RestoreState st =
          RestoreState.open(
              Restorer.defaultStateFile(target),
              img.index().checksum(),
              img.size(),
              img.chunkCount())) {
        st.setHolesAreZero(false);
        st.save();
      }
      int zeros = 0;
      int discarded = -1;
      for (int i = 0; i < img.chunkCount(); i++) {
        zeros += img.isZero(i) ? 1 : 0;
        if (!img.isZero(i) && discarded < 0) {
          discarded = i;
        }
      }
      assertTrue(zeros > 5, "zero chunks: " + zeros);
      byte[] expected = smallImage.clone();
      RecordingChannels io = new RecordingChannels(target);
      long t0 = System.nanoTime();
      try (LiveRestore live = open(img, target, true, io)) {
        assertFalse(live.progress().complete());
        long start = img.index().start(discarded);
        live.discard(start, img.index().length(discarded)); // reads as zeros from now on
        Arrays.fill(expected, (int) start, (int) img.index().end(discarded), (byte) 0);
        byte[] w = {1, 2, 3};
        // the background moves chunks discarded + 256 and + 257 under the lock stripes of the
        // discarded chunk and of this write's
        long at = img.index().start(discarded + 1) + 1;
        live.write(at, w, 0, w.length);
        System.arraycopy(w, 0, expected, (int) at, w.length);
        live.start();
        awaitBackgroundEnd(live);
        boolean[] rec = recorded(img, target);
        for (int i = 0; i < rec.length; i++) {
          assertTrue(rec[i], "chunk " + i + " recorded once the background restore ended");
        }
        assertArrayEquals(expected, readAll(live, img));
        for (int i = 0; i < img.chunkCount(); i += 37) { // each takes its chunk's lock
          live.writeZeros(img.index().start(i), img.index().length(i));
          Arrays.fill(expected, (int) img.index().start(i), (int) img.index().end(i), (byte) 0);
        }
      }
      io.assertSyncedBeforeEachRecord();
      long saves = io.events().stream().filter(RecordingChannels.Event::claims).count();
      long checkpoints = (System.nanoTime() - t0) / RestoreState.CHECKPOINT_NANOS;
      assertTrue(
          saves <= 5 + checkpoints,
          saves + " saves: the background saves at checkpoints, not per chunk");
      assertArrayEquals(
          expected, Files.readAllBytes(target), "no byte of the old contents is left");
    }
  }

  @Test
  void aRateLimitedBackgroundRestoreKeepsItsPaceAndAFlushOrACloseRecordsWhatItMoved()
      throws Exception {
    try (FetchPipeline p = new FetchPipeline(store, 4, 2, RetryPolicy.defaults())) {
      Image img = smallChunks(p, 400_000, 13);
      Path target = dir.resolve("paced.img");
      ImageReader r =
          new ImageReader(
              img,
              new ChunkCache(64L * MIB),
              new ImageReader.Settings(4, 0, Duration.ofSeconds(30)));
      LiveRestore live =
          LiveRestore.open(
              r,
              target,
              Restorer.defaultStateFile(target),
              new LiveRestore.Options(true, 4, 400_000));
      int flushed;
      try {
        live.start();
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (live.progress().present() < 25 && System.nanoTime() < deadline) {
          Thread.sleep(5);
        }
        live.flush();
        flushed = live.progress().present();
        int recorded = 0;
        for (boolean b : recorded(img, target)) {
          recorded += b ? 1 : 0;
        }
        assertTrue(
            recorded >= flushed && flushed >= 25, "flushed " + flushed + ", recorded " + recorded);
        Thread.sleep(150);
        LiveRestore.Progress pr = live.progress();
        assertTrue(
            pr.rate() > 50_000 && pr.rate() < 600_000, "rate " + pr.rate() + " B/s, limit 400000");
        assertFalse(pr.complete(), "the limit holds the restore back");
      } finally {
        live.close();
      }
      int atClose = live.progress().present();
      assertTrue(atClose > flushed, "moved after the flush: " + atClose);
      try (LiveRestore again =
          LiveRestore.open(
              r, target, Restorer.defaultStateFile(target), new LiveRestore.Options(false, 4, 0))) {
        assertEquals(atClose, again.progress().present(), "closing recorded every chunk moved");
        assertArrayEquals(smallImage, readAll(again, img));
      }
    }
  }

  @Test
  void theRateIsTheBackgroundsBytesOverItsTime() {
    assertEquals(
        2000.0,
        new LiveRestore.Progress(1, 0, 0, 0, 1000, 500_000_000, false, true, 0, null).rate());
    assertEquals(
        0.0,
        new LiveRestore.Progress(1, 0, 0, 0, 1000, 0, false, true, 0, null).rate(),
        "not started");
  }
}
