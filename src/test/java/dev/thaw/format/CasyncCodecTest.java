package dev.thaw.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.testing.CasyncFixtures;
import dev.thaw.testing.CasyncFixtures.Compression;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

class CasyncCodecTest {
  private static final int MAX = 256 * 1024;

  private static byte[] data(int n, long seed) {
    byte[] b = new byte[n];
    Random r = new Random(seed);
    for (int i = 0; i < n; i++) {
      b[i] = (byte) (i % 7 == 0 ? r.nextInt() : 'a' + i % 13); // compressible, not trivially
    }
    return b;
  }

  @ParameterizedTest
  @EnumSource(Compression.class)
  void decodesEachCompressionWithEitherIdAlgorithm(Compression c) throws Exception {
    for (boolean sha512 : new boolean[] {true, false}) {
      byte[] plain = data(70000, c.name().hashCode());
      Digest id = CasyncFixtures.id(plain, 0, plain.length, sha512);
      CasyncCodec codec = new CasyncCodec(sha512, MAX);
      assertEquals(sha512 ? "SHA-512/256" : "SHA-256", codec.algorithm());
      byte[] stored = CasyncFixtures.compress(plain, 0, plain.length, c);
      assertArrayEquals(
          plain, codec.decodeChunk(stored, id, plain.length), c + " sha512=" + sha512);
      assertArrayEquals(plain, codec.decodeChunk(stored, id, -1), c + " length unknown");
      // the other algorithm's id does not match
      CasyncCodec other = new CasyncCodec(!sha512, MAX);
      String m =
          assertThrows(FormatException.class, () -> other.decodeChunk(stored, id, plain.length))
              .getMessage();
      assertTrue(m.contains("chunk id mismatch"), m);
    }
  }

  @Test
  void theCompressionIsDetectedByMagic() throws Exception {
    // casync's own files start with these magics (zstd 28 b5 2f fd, xz fd 37 7a 58 5a 00, gzip 1f
    // 8b)
    byte[] plain = data(1000, 1);
    assertEquals(0x28, CasyncFixtures.compress(plain, 0, 1000, Compression.ZSTD)[0]);
    assertEquals((byte) 0xfd, CasyncFixtures.compress(plain, 0, 1000, Compression.XZ)[0]);
    assertEquals(0x1f, CasyncFixtures.compress(plain, 0, 1000, Compression.GZIP)[0]);
  }

  @ParameterizedTest
  @ValueSource(strings = {"ZSTD", "XZ", "GZIP"})
  void damagedOrWrongLengthChunksAreErrors(String name) {
    Compression c = Compression.valueOf(name);
    byte[] plain = data(50000, 3);
    Digest id = CasyncFixtures.id(plain, 0, plain.length, true);
    CasyncCodec codec = new CasyncCodec(true, MAX);
    byte[] stored = CasyncFixtures.compress(plain, 0, plain.length, c);
    byte[] cut = java.util.Arrays.copyOf(stored, stored.length / 2);
    assertThrows(FormatException.class, () -> codec.decodeChunk(cut, id, plain.length));
    String m =
        assertThrows(FormatException.class, () -> codec.decodeChunk(stored, id, plain.length - 1))
            .getMessage();
    assertFalse(m.isEmpty());
  }

  @Test
  void anUncompressedChunkIsCheckedByItsId() throws Exception {
    byte[] plain = data(3000, 4);
    CasyncCodec codec = new CasyncCodec(false, MAX);
    Digest id = CasyncFixtures.id(plain, 0, plain.length, false);
    assertArrayEquals(plain, codec.decodeChunk(plain, id, plain.length));
    byte[] bad = plain.clone();
    bad[100] ^= 1;
    assertTrue(
        assertThrows(FormatException.class, () -> codec.decodeChunk(bad, id, plain.length))
            .getMessage()
            .contains("data hashes to"));
    String m =
        assertThrows(FormatException.class, () -> codec.decodeChunk(plain, id, 2999)).getMessage();
    assertTrue(m.contains("3000") && m.contains("2999"), m);
  }

  @Test
  void zeroChunksOfTheMaximumSizeAreRecognisedFromTheirId() {
    CasyncCodec sha512 = new CasyncCodec(true, MAX);
    // the id casync gives 256 KiB of zeros (seen in a store made by Debian's casync 2)
    Digest zero = Digest.parse("1c8109946feed9f9e9fe4b5144d90f05a50fb3275e848cb72f4b9546d8c533f2");
    assertTrue(sha512.isZero(zero, MAX));
    assertFalse(sha512.isZero(zero, MAX - 1));
    assertFalse(sha512.isZero(CasyncFixtures.id(new byte[MAX], 0, MAX, false), MAX));
    CasyncCodec sha256 = new CasyncCodec(false, MAX);
    assertTrue(sha256.isZero(CasyncFixtures.id(new byte[MAX], 0, MAX, false), MAX));
    assertFalse(sha256.isZero(zero, MAX));
    byte[] notZero = new byte[MAX];
    notZero[5] = 1;
    assertFalse(sha512.isZero(CasyncFixtures.id(notZero, 0, MAX, true), MAX));
  }
}
