package dev.thaw.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.testing.CasyncFixtures;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

class CaibxIndexTest {
  private static final int MIN = 16 * 1024;
  private static final int AVG = 64 * 1024;
  private static final int MAX = 256 * 1024;

  private static CasyncFixtures.Chunks table(long... ends) {
    Digest[] ids = new Digest[ends.length];
    for (int i = 0; i < ends.length; i++) {
      byte[] b = new byte[32];
      b[0] = (byte) i;
      b[31] = (byte) (i >> 8);
      ids[i] = Digest.of(b);
    }
    return new CasyncFixtures.Chunks(ends, ids);
  }

  private static byte[] bytes(long... ends) {
    return CasyncFixtures.index(table(ends), MIN, AVG, MAX, true);
  }

  private static void putLong(byte[] b, int at, long v) {
    ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(at, v);
  }

  @Test
  void parsesWhatCasyncWrites() throws Exception {
    CaibxIndex idx = CaibxIndex.parse(bytes(20000, 282144, 300000), "img.caibx");
    assertEquals(3, idx.chunkCount());
    assertEquals(300000, idx.size());
    assertTrue(idx.sha512_256());
    assertEquals(MIN, idx.minChunkSize());
    assertEquals(AVG, idx.avgChunkSize());
    assertEquals(MAX, idx.maxChunkSize());
    assertEquals(0, idx.start(0));
    assertEquals(20000, idx.end(0));
    assertEquals(20000, idx.start(1));
    assertEquals(262144, idx.length(1));
    assertEquals(17856, idx.length(2));
    assertEquals(table(1, 2, 3).ids()[2], idx.digest(2));
    assertEquals(32, idx.checksum().length);
    assertFalse(
        CaibxIndex.parse(CasyncFixtures.index(table(10), MIN, AVG, MAX, false), "x").sha512_256());
    assertEquals(0, CaibxIndex.parse(bytes(), "empty.caibx").size());
  }

  @Test
  void chunkAtIsABinarySearchOverEndOffsets() throws Exception {
    Random r = new Random(5);
    long[] ends = new long[1000];
    long at = 0;
    for (int i = 0; i < ends.length; i++) {
      at += 1 + r.nextInt(MAX);
      ends[i] = at;
    }
    CaibxIndex idx = CaibxIndex.parse(bytes(ends), "img.caibx");
    for (int i = 0; i < ends.length; i++) {
      assertEquals(i, idx.chunkAt(idx.start(i)), "first byte of chunk " + i);
      assertEquals(i, idx.chunkAt(idx.end(i) - 1), "last byte of chunk " + i);
      assertEquals(i, idx.chunkAt((idx.start(i) + idx.end(i)) / 2), "middle of chunk " + i);
    }
    assertThrows(IndexOutOfBoundsException.class, () -> idx.chunkAt(idx.size()));
    assertThrows(IndexOutOfBoundsException.class, () -> idx.chunkAt(-1));
    CaibxIndex one = CaibxIndex.parse(bytes(1), "one.caibx");
    assertEquals(0, one.chunkAt(0));
  }

  @Test
  void theChecksumIdentifiesTheTable() throws Exception {
    assertArrayEquals(
        CaibxIndex.parse(bytes(10, 20), "a").checksum(),
        CaibxIndex.parse(bytes(10, 20), "b").checksum());
    assertFalse(
        java.util.Arrays.equals(
            CaibxIndex.parse(bytes(10, 20), "a").checksum(),
            CaibxIndex.parse(bytes(10, 21), "a").checksum()));
  }

  private static String error(byte[] data) {
    return assertThrows(FormatException.class, () -> CaibxIndex.parse(data, "/srv/img.caibx"))
        .getMessage();
  }

  @Test
  void wrongTypeConstantsAreRefused() {
    byte[] b = bytes(100, 200);
    putLong(b, 8, 0x1234);
    String m = error(b);
    assertTrue(m.startsWith("/srv/img.caibx: ") && m.contains("not a casync index"), m);
    byte[] t = bytes(100, 200);
    putLong(t, 56, 0x1234);
    assertTrue(error(t).contains("wrong table header"), error(t));
    byte[] h = bytes(100, 200);
    putLong(h, 0, 64);
    assertTrue(error(h).contains("not a casync index"), error(h));
    assertTrue(error(new byte[10]).contains("too short"));
  }

  @Test
  void aMissingTailMarkerIsRefused() {
    byte[] b = bytes(100, 200);
    putLong(b, b.length - 8, 0);
    assertTrue(error(b).contains("no table tail marker"), error(b));
    byte[] cut = java.util.Arrays.copyOf(bytes(100, 200, 300), bytes(100, 200, 300).length - 40);
    assertTrue(error(cut).contains("tail marker"), error(cut));
    byte[] size = bytes(100, 200);
    putLong(size, size.length - 16, 999);
    assertTrue(error(size).contains("table tail does not match"), error(size));
  }

  @Test
  void offsetsMustIncrease() {
    assertTrue(
        error(bytes(100, 100)).contains("chunk 1 end offset 100 does not increase"),
        error(bytes(100, 100)));
    assertTrue(error(bytes(100, 50)).contains("does not increase"));
    assertTrue(error(bytes(0)).contains("chunk 0 end offset 0 does not increase"));
  }

  @Test
  void aChunkLargerThanTheMaximumIsRefused() {
    String m = error(bytes(100, 100 + MAX + 1));
    assertTrue(
        m.contains(
            "chunk 1 has " + (MAX + 1) + " bytes, more than the index's maximum chunk size " + MAX),
        m);
    byte[] limits = bytes(100);
    putLong(limits, 24, MAX * 2L); // min > max
    assertTrue(error(limits).contains("bad chunk size limits"), error(limits));
  }

  @Test
  void imageNamesComeFromTheIndexFileName() {
    assertEquals("img", CaibxIndex.imageName("/srv/img.caibx"));
    assertEquals("disk.raw", CaibxIndex.imageName("http://h/x/disk.raw.caibx"));
    assertEquals("img", CaibxIndex.imageName("https://h/img.caibx?sig=1"));
    assertThrows(IllegalArgumentException.class, () -> CaibxIndex.imageName("/srv/.caibx"));
  }
}
