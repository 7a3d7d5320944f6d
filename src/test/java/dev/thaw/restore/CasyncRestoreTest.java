package dev.thaw.restore;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.RetryPolicy;
import dev.thaw.format.Digest;
import dev.thaw.image.CasyncImage;
import dev.thaw.image.Image;
import dev.thaw.testing.CasyncFixtures;
import dev.thaw.testing.CasyncFixtures.Compression;
import dev.thaw.testing.MemoryStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Restore and verify over a variable-size (casync) index. */
@Timeout(120)
class CasyncRestoreTest {
  private static final int MIN = 4 * 1024;
  private static final int MAX = 64 * 1024;
  @TempDir Path dir;
  private final MemoryStore store = new MemoryStore();

  private record Made(byte[] image, byte[] index, CasyncFixtures.Chunks chunks) {}

  private Made make(int size, boolean sha512, Compression c) {
    byte[] image = CasyncFixtures.image(size, MAX, size);
    CasyncFixtures.Chunks chunks = CasyncFixtures.chunk(image, MIN, MAX, sha512, c, store, 1);
    return new Made(image, CasyncFixtures.index(chunks, MIN, 16 * 1024, MAX, sha512), chunks);
  }

  private FetchPipeline pipeline(int parallel) {
    return new FetchPipeline(
        store, parallel, 2, new RetryPolicy(2, Duration.ofMillis(1), Duration.ofMillis(2)));
  }

  @Test
  void restoresEveryCompressionAndIdKind() throws Exception {
    int k = 0;
    for (Compression c : Compression.values()) {
      for (boolean sha512 : new boolean[] {true, false}) {
        Made m = make((2 << 20) + 12345 + k, sha512, c);
        Path target = dir.resolve("out-" + k++ + ".img");
        try (FetchPipeline p = pipeline(4)) {
          Image img = CasyncImage.open("img.caibx", m.index(), p);
          Restorer.Result r =
              new Restorer(img, target, new Restorer.Options(false, false, 6, 1 << 20, null)).run();
          assertArrayEquals(m.image(), Files.readAllBytes(target), c + " sha512=" + sha512);
          assertEquals(img.chunkCount(), r.fetched() + r.zero());
          assertTrue(r.zero() > 0, "zero chunks recognised");
          for (int i = 0; i < img.chunkCount(); i++) {
            if (img.isZero(i)) {
              assertEquals(0, store.reads(img.digest(i)), "zero chunk fetched");
            }
          }
        }
      }
    }
  }

  @Test
  void smallChunksKeepTheFetchesGoing() throws Exception {
    Made m = make(4 << 20, true, Compression.ZSTD);
    store.fault =
        (d, a) -> {
          try {
            Thread.sleep(5);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        };
    assertEquals(1, maxConcurrentFetches(m, 0), "a window of one chunk");
    int withBytes = maxConcurrentFetches(m, 8 << 20);
    assertTrue(
        withBytes >= 6,
        "a window of one chunk and 8 MiB keeps the 8 fetch threads busy: " + withBytes);
  }

  private int maxConcurrentFetches(Made m, long windowBytes) throws Exception {
    MemoryStore fresh = new MemoryStore();
    fresh.fault = store.fault;
    for (Digest d : m.chunks().ids()) {
      if (store.raw(d) != null) {
        fresh.writeChunk(d, store.raw(d));
      }
    }
    Path target = dir.resolve("w" + windowBytes + ".img");
    try (FetchPipeline p =
        new FetchPipeline(
            fresh, 8, 2, new RetryPolicy(2, Duration.ofMillis(1), Duration.ofMillis(2)))) {
      Image img = CasyncImage.open("img.caibx", m.index(), p);
      new Restorer(img, target, new Restorer.Options(false, false, 1, windowBytes, null)).run();
    }
    assertArrayEquals(m.image(), Files.readAllBytes(target));
    return fresh.maxConcurrentReads();
  }

  @Test
  void verifyReportsABadAndAMissingChunkByIdAndLocation() throws Exception {
    Made m = make(2 << 20, true, Compression.ZSTD);
    try (FetchPipeline p = pipeline(4)) {
      Image img = CasyncImage.open("img.caibx", m.index(), p);
      Verifier.Report ok = new Verifier(img, 4, 1 << 20).run();
      assertTrue(ok.problems().isEmpty(), ok.problems().toString());
      assertTrue(ok.chunks() > 10);
      int bad = -1;
      int gone = -1;
      for (int i = 0; i < img.chunkCount() && gone < 0; i++) {
        if (!img.isZero(i)) {
          if (bad < 0) {
            bad = i;
          } else if (!img.digest(i).equals(img.digest(bad))) {
            gone = i;
          }
        }
      }
      Digest badId = img.digest(bad);
      Digest goneId = img.digest(gone);
      store.putRaw(
          badId,
          CasyncFixtures.compress(
              new byte[img.index().length(bad)], 0, img.index().length(bad), Compression.ZSTD));
      store.remove(goneId);
      Verifier.Report r = new Verifier(img, 4, 1 << 20).run();
      assertEquals(2, r.problems().size(), r.problems().toString());
      for (Verifier.Problem pr : r.problems()) {
        assertEquals("img", pr.file());
        assertTrue(
            pr.message().contains(pr.digest()) && pr.message().contains("mem:"), pr.message());
        if (pr.digest().equals(badId.hex())) {
          assertTrue(pr.message().contains("chunk id mismatch") && !pr.missing(), pr.message());
        } else {
          assertEquals(goneId.hex(), pr.digest());
          assertTrue(pr.missing());
        }
      }
    }
  }
}
