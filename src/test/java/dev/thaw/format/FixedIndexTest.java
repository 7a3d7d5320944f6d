package dev.thaw.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.UUID;
import org.junit.jupiter.api.Test;

class FixedIndexTest {
  private static FixedIndex sample(long size) {
    int cs = FixedIndex.DEFAULT_CHUNK_SIZE;
    int n = (int) ((size + cs - 1) / cs);
    Digest[] d = new Digest[n];
    for (int i = 0; i < n; i++) {
      byte[] b = new byte[32];
      b[0] = (byte) i;
      b[31] = (byte) (i * 7);
      d[i] = Digest.of(b);
    }
    return FixedIndex.of(size, cs, d, UUID.randomUUID(), 1700000000L);
  }

  @Test
  void roundTripsAndMapsOffsets() throws Exception {
    FixedIndex idx = sample(10L * 1024 * 1024 + 5);
    byte[] file = idx.toBytes();
    assertEquals(4096 + 32 * 3, file.length);
    FixedIndex back = FixedIndex.parse(file, "x.fidx");
    assertEquals(idx.size(), back.size());
    assertEquals(3, back.chunkCount());
    assertEquals(idx.uuid(), back.uuid());
    assertEquals(1700000000L, back.ctime());
    assertArrayEquals(idx.checksum(), back.checksum());
    assertEquals(idx.digest(2), back.digest(2));
    assertEquals(2 * 1024 * 1024 + 5, back.length(2));
    assertEquals(2, back.chunkAt(back.size() - 1));
    assertEquals(1, back.chunkAt(4L * 1024 * 1024));
    assertEquals(0, back.chunkAt(4L * 1024 * 1024 - 1));
    assertArrayEquals(file, back.toBytes());
  }

  @Test
  void refusesDamage() {
    byte[] file = sample(9L * 1024 * 1024).toBytes();
    FormatException trunc =
        assertThrows(
            FormatException.class,
            () -> FixedIndex.parse(Arrays.copyOf(file, file.length - 1), "a.img.fidx"));
    assertTrue(
        trunc.getMessage().contains("a.img.fidx") && trunc.getMessage().contains("truncated"),
        trunc.getMessage());
    assertThrows(
        FormatException.class, () -> FixedIndex.parse(Arrays.copyOf(file, 100), "a.img.fidx"));
    byte[] magic = file.clone();
    magic[0] ^= 1;
    assertTrue(
        assertThrows(FormatException.class, () -> FixedIndex.parse(magic, "m"))
            .getMessage()
            .contains("wrong magic"));
    byte[] digest = file.clone();
    digest[4096 + 40] ^= 1;
    assertTrue(
        assertThrows(FormatException.class, () -> FixedIndex.parse(digest, "d"))
            .getMessage()
            .contains("checksum"));
    byte[] chunkSize = file.clone();
    chunkSize[72] = 3;
    assertThrows(FormatException.class, () -> FixedIndex.parse(chunkSize, "c"));
    byte[] huge = file.clone(); // an image size near 2^63: the chunk count must not overflow
    java.nio.ByteBuffer.wrap(huge)
        .order(java.nio.ByteOrder.LITTLE_ENDIAN)
        .putLong(64, Long.MAX_VALUE - 5);
    FormatException e =
        assertThrows(FormatException.class, () -> FixedIndex.parse(huge, "h.img.fidx"));
    assertTrue(
        e.getMessage().contains("2199023255552 chunks") && !e.getMessage().contains("-"),
        e.getMessage());
  }
}
