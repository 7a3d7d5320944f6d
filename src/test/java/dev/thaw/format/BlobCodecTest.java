package dev.thaw.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.luben.zstd.Zstd;
import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;
import dev.thaw.crypto.CryptConfig;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Random;
import java.util.zip.CRC32;
import org.junit.jupiter.api.Test;

class BlobCodecTest {
  private static final CryptConfig KEY = new CryptConfig(new byte[32]);

  private static byte[] compressible(int n) {
    byte[] d = new byte[n];
    for (int i = 0; i < n; i++) {
      d[i] = (byte) "thaw restores machines at 3 a.m. ".charAt(i % 33);
    }
    return d;
  }

  private static byte[] random(int n, long seed) {
    byte[] d = new byte[n];
    new Random(seed).nextBytes(d);
    return d;
  }

  @Test
  void encodesTheExpectedKind() throws Exception {
    BlobCodec plain = new BlobCodec(null);
    BlobCodec enc = new BlobCodec(KEY);
    assertEquals(BlobKind.ZSTD, BlobCodec.kind(plain.encode(compressible(5000), 0, 5000, true)));
    assertEquals(
        BlobKind.UNCOMPRESSED, BlobCodec.kind(plain.encode(compressible(5000), 0, 5000, false)));
    // incompressible data is stored uncompressed even when compression is asked for
    assertEquals(
        BlobKind.UNCOMPRESSED, BlobCodec.kind(plain.encode(random(5000, 1), 0, 5000, true)));
    assertEquals(
        BlobKind.ENCRYPTED_ZSTD, BlobCodec.kind(enc.encode(compressible(5000), 0, 5000, true)));
    assertEquals(BlobKind.ENCRYPTED, BlobCodec.kind(enc.encode(random(5000, 1), 0, 5000, true)));
  }

  @Test
  void decodesAllFourKinds() throws Exception {
    for (BlobCodec codec : new BlobCodec[] {new BlobCodec(null), new BlobCodec(KEY)}) {
      for (byte[] data : new byte[][] {compressible(70000), random(70000, 2), new byte[0]}) {
        for (boolean compress : new boolean[] {true, false}) {
          byte[] blob = codec.encode(data, 0, data.length, compress);
          Digest d = codec.digest(data, 0, data.length);
          assertArrayEquals(data, codec.decodeChunk(blob, d, data.length));
          assertArrayEquals(data, codec.decodeChunk(blob, d, -1));
        }
      }
    }
  }

  @Test
  void decodesZstdFramesWithoutContentSize() throws Exception {
    // frames written by a streaming encoder carry no content size; the decoder must not need it
    byte[] data = compressible(300000);
    byte[] frame;
    try (var ctx = new com.github.luben.zstd.ZstdCompressCtx()) {
      ctx.setContentSize(false);
      frame = ctx.compress(data);
    }
    assertEquals(-1, Zstd.getFrameContentSize(frame) < 0 ? -1 : 0);
    byte[] blob = new byte[12 + frame.length];
    System.arraycopy(Magic.COMPRESSED_BLOB, 0, blob, 0, 8);
    System.arraycopy(frame, 0, blob, 12, frame.length);
    CRC32 crc = new CRC32();
    crc.update(frame);
    ByteBuffer.wrap(blob, 8, 4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) crc.getValue());
    BlobCodec codec = new BlobCodec(null);
    assertArrayEquals(data, codec.decode(blob, -1, BlobCodec.MAX_CHUNK));
    assertArrayEquals(
        data, codec.decodeChunk(blob, codec.digest(data, 0, data.length), data.length));
  }

  @Test
  void aFlippedByteAnywhereIsDetected() throws Exception {
    for (BlobCodec codec : new BlobCodec[] {new BlobCodec(null), new BlobCodec(KEY)}) {
      for (boolean compress : new boolean[] {true, false}) {
        byte[] data = compressible(3000);
        byte[] blob = codec.encode(data, 0, data.length, compress);
        Digest d = codec.digest(data, 0, data.length);
        BlobKind kind = BlobCodec.kind(blob);
        for (int pos = 0; pos < blob.length; pos++) {
          for (int bit : new int[] {0x01, 0x80}) {
            byte[] bad = blob.clone();
            bad[pos] ^= (byte) bit;
            int p = pos;
            assertThrows(
                FormatException.class,
                () -> codec.decodeChunk(bad, d, data.length),
                () -> "flip at " + p + " of " + blob.length + " went undetected (" + kind + ")");
          }
        }
      }
    }
  }

  @Test
  void aFlipWithARepairedCrcIsCaughtByTheDigestOrTag() throws Exception {
    // an attacker (or a bug) that fixes up the CRC still cannot get altered data through
    for (BlobCodec codec : new BlobCodec[] {new BlobCodec(null), new BlobCodec(KEY)}) {
      byte[] data = random(4096, 7);
      byte[] blob = codec.encode(data, 0, data.length, false);
      int header = BlobCodec.kind(blob).encrypted() ? 44 : 12;
      blob[header + 100] ^= 1;
      CRC32 crc = new CRC32();
      crc.update(blob, header, blob.length - header);
      ByteBuffer.wrap(blob, 8, 4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) crc.getValue());
      FormatException e =
          assertThrows(
              FormatException.class,
              () -> codec.decodeChunk(blob, codec.digest(data, 0, data.length), data.length));
      assertTrue(
          e.getMessage().contains(codec.crypt() == null ? "digest mismatch" : "authentication"),
          e.getMessage());
    }
  }

  @Test
  void truncatedAndForeignBlobsAreRefused() {
    BlobCodec codec = new BlobCodec(null);
    byte[] blob = codec.encode(compressible(1000), 0, 1000, true);
    byte[] cut = java.util.Arrays.copyOf(blob, blob.length - 5);
    assertThrows(FormatException.class, () -> codec.decode(cut, -1, 1 << 20));
    assertThrows(FormatException.class, () -> codec.decode(new byte[5], -1, 1 << 20));
    assertThrows(
        FormatException.class,
        () ->
            codec.decode(
                "not a blob at all, really".getBytes(StandardCharsets.UTF_8), -1, 1 << 20));
  }

  @Test
  void encryptedBlobNeedsTheRightKey() throws Exception {
    byte[] data = compressible(10000);
    BlobCodec enc = new BlobCodec(KEY);
    byte[] blob = enc.encode(data, 0, data.length, true);
    FormatException noKey =
        assertThrows(FormatException.class, () -> new BlobCodec(null).decode(blob, -1, 1 << 20));
    assertTrue(noKey.getMessage().contains("no key"), noKey.getMessage());
    byte[] other = new byte[32];
    other[0] = 1;
    FormatException wrong =
        assertThrows(
            FormatException.class,
            () -> new BlobCodec(new CryptConfig(other)).decode(blob, -1, 1 << 20));
    assertTrue(wrong.getMessage().contains("wrong key"), wrong.getMessage());
  }

  @Test
  void lengthAndLimitsAreEnforced() {
    BlobCodec codec = new BlobCodec(null);
    byte[] data = compressible(10000);
    byte[] blob = codec.encode(data, 0, data.length, true);
    Digest d = codec.digest(data, 0, data.length);
    FormatException tooBig =
        assertThrows(FormatException.class, () -> codec.decodeChunk(blob, d, 9999));
    assertTrue(
        tooBig.getMessage().contains("more than the chunk's 9999 bytes"), tooBig.getMessage());
    assertThrows(FormatException.class, () -> codec.decode(blob, -1, 5000));
  }

  @Test
  void everyEncryptionHasANonceOfItsOwn() throws Exception {
    BlobCodec enc = new BlobCodec(KEY);
    byte[] data = random(4096, 11);
    java.util.Set<String> nonces = new java.util.HashSet<>();
    for (int i = 0; i < 200; i++) {
      byte[] blob = enc.encode(data, 0, data.length, false);
      byte[] iv = java.util.Arrays.copyOfRange(blob, 12, 28);
      assertTrue(!java.util.Arrays.equals(new byte[16], iv), "an all-zero GCM nonce");
      assertTrue(
          nonces.add(java.util.HexFormat.of().formatHex(iv)),
          "a GCM nonce used twice under one key");
      assertArrayEquals(data, enc.decode(blob, data.length, data.length));
    }
  }

  @Test
  void theEdgesOfTheLengthChecks() throws Exception {
    BlobCodec plain = new BlobCodec(null);
    byte[] data = random(1000, 12);
    Digest d = plain.digest(data, 0, data.length);
    byte[] blob = plain.encode(data, 0, data.length, false);
    assertArrayEquals(data, plain.decode(blob, -1, 1000), "data of exactly the limit");
    FormatException zero = assertThrows(FormatException.class, () -> plain.decodeChunk(blob, d, 0));
    assertTrue(zero.getMessage().contains("index says 0"), zero.getMessage());
    byte[] plainMagic = java.util.Arrays.copyOf(blob, 8);
    FormatException cut =
        assertThrows(FormatException.class, () -> plain.decodeChunk(plainMagic, d, 1000));
    assertTrue(cut.getMessage().contains("truncated"), cut.getMessage());
    byte[] encMagic =
        java.util.Arrays.copyOf(new BlobCodec(KEY).encode(data, 0, data.length, false), 8);
    FormatException mode =
        assertThrows(FormatException.class, () -> plain.decodeChunk(encMagic, d, 1000));
    assertTrue(
        mode.getMessage().contains("chunk is encrypted, but its archive is not"),
        mode.getMessage());
  }

  @Test
  void aDecodeGivesTheBlobsBufferBackAndAFailedOneItsOwnToo() throws Exception {
    BlobCodec enc = new BlobCodec(KEY);
    byte[] data = random(5000, 13);
    Digest d = enc.digest(data, 0, data.length);
    byte[] blob = enc.encode(data, 0, data.length, false);
    BufferPool pool = new BufferPool(1 << 20);
    Buffer in = Buffer.wrap(blob.clone());
    Buffer out = enc.decodeChunk(in, d, data.length, pool);
    assertArrayEquals(data, out.toArray());
    assertTrue(!in.retain(), "the blob is released once decrypted");
    out.release();
    Buffer refused = Buffer.wrap(blob.clone());
    assertThrows(
        FormatException.class,
        () -> new BlobCodec(null).decodeChunk(refused, d, data.length, pool));
    assertTrue(!refused.retain(), "a refused blob is released");
    // altered ciphertext with a repaired CRC: the tag fails, and the buffer decrypted into goes
    // back
    byte[] altered = blob.clone();
    altered[altered.length - 1] ^= 1;
    java.util.zip.CRC32 crc = new java.util.zip.CRC32();
    crc.update(altered, 44, altered.length - 44);
    java.nio.ByteBuffer.wrap(altered, 8, 4)
        .order(java.nio.ByteOrder.LITTLE_ENDIAN)
        .putInt((int) crc.getValue());
    long free = pool.freeBytes();
    long taken = pool.taken();
    FormatException e =
        assertThrows(
            FormatException.class,
            () -> enc.decodeChunk(Buffer.wrap(altered), d, data.length, pool));
    assertTrue(e.getMessage().contains("authentication failed"), e.getMessage());
    assertEquals(taken + 1, pool.taken(), "decrypted into a buffer of the pool");
    assertEquals(free, pool.freeBytes(), "which went back to the pool");
  }
}
