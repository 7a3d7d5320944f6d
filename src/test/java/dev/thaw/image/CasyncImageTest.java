package dev.thaw.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.RetryPolicy;
import dev.thaw.format.FormatException;
import dev.thaw.testing.CasyncFixtures;
import dev.thaw.testing.Fixtures;
import dev.thaw.testing.MemoryStore;
import java.io.IOException;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The mount's read path over a variable-size (casync) index. */
@Timeout(60)
class CasyncImageTest {
  private static final int MIN = 2 * 1024;
  private static final int MAX = 32 * 1024;
  private final MemoryStore store = new MemoryStore();
  private FetchPipeline pipeline;
  private byte[] image;
  private Image img;

  @BeforeEach
  void setUp() throws Exception {
    image = CasyncFixtures.image(3 << 20, MAX, 7);
    CasyncFixtures.Chunks chunks =
        CasyncFixtures.chunk(image, MIN, MAX, true, CasyncFixtures.Compression.ZSTD, store, 7);
    byte[] index = CasyncFixtures.index(chunks, MIN, 8 * 1024, MAX, true);
    pipeline =
        new FetchPipeline(
            store, 4, 2, new RetryPolicy(2, Duration.ofMillis(1), Duration.ofMillis(2)));
    img = CasyncImage.open("/srv/disk.img.caibx", index, pipeline);
  }

  @AfterEach
  void tearDown() {
    pipeline.close();
  }

  private static byte[] read(ImageReader.Handle h, long off, int len) throws IOException {
    return Fixtures.read(h, off, len);
  }

  @Test
  void isNamedAfterItsIndexAndReadsAnyRangeExactly() throws Exception {
    assertEquals("disk.img", img.name());
    assertEquals(image.length, img.size());
    ImageReader r =
        new ImageReader(
            img, new ChunkCache(64L << 20), new ImageReader.Settings(0, 0, Duration.ofSeconds(20)));
    Random rnd = new Random(3);
    try (ImageReader.Handle h = r.open()) {
      for (int k = 0; k < 200; k++) {
        int off = rnd.nextInt(image.length);
        int len = 1 + rnd.nextInt(200_000);
        int end = Math.min(image.length, off + len);
        assertArrayEquals(
            Arrays.copyOfRange(image, off, end), read(h, off, len), "range " + off + "+" + len);
      }
      assertArrayEquals(image, read(h, 0, image.length));
    }
    int zeros = 0;
    for (int i = 0; i < img.chunkCount(); i++) {
      if (img.isZero(i)) {
        zeros++;
        assertEquals(0, store.reads(img.digest(i)), "zero chunk " + i + " fetched");
      }
    }
    assertTrue(zeros > 5, "the image has max-size zero chunks: " + zeros);
  }

  @Test
  void readAheadKeepsAtLeastTheBytesAheadWhenChunksAreSmall() throws Exception {
    int chunksOnly = heldAfterSequentialReads(0);
    int withBytes = heldAfterSequentialReads(1 << 20);
    // held: the chunks of the last read (held until passed) and the 4 ahead
    assertTrue(chunksOnly <= 4 + 64 * 1024 / MIN, "chunks only: " + chunksOnly);
    // 1 MiB ahead in chunks of at most 32 KiB: at least 32 chunks, less the zero ones
    assertTrue(
        withBytes >= chunksOnly + 12, "with a 1 MiB floor: " + withBytes + " vs " + chunksOnly);
  }

  private int heldAfterSequentialReads(long bytes) throws IOException {
    ImageReader r =
        new ImageReader(
            img,
            new ChunkCache(64L << 20),
            new ImageReader.Settings(4, bytes, Duration.ofSeconds(20)));
    try (ImageReader.Handle h = r.open()) {
      for (int k = 0; k < 3; k++) {
        assertArrayEquals(
            Arrays.copyOfRange(image, k * 65536, (k + 1) * 65536), read(h, k * 65536L, 65536));
      }
      return h.held();
    }
  }

  @Test
  void aMalformedIndexNamesItsLocation() {
    String m =
        assertThrows(
                FormatException.class,
                () -> CasyncImage.open("http://h/x.caibx", new byte[200], pipeline))
            .getMessage();
    assertTrue(m.startsWith("http://h/x.caibx: "), m);
  }
}
