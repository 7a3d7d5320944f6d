package dev.thaw.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.thaw.crypto.CryptConfig;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import org.bouncycastle.crypto.generators.SCrypt;
import org.junit.jupiter.api.Test;

/** Re-derives every published vector in shared/formats.md. */
class VectorsTest {
  private static byte[] bytes(int... v) {
    byte[] b = new byte[v.length];
    for (int i = 0; i < v.length; i++) {
      b[i] = (byte) v[i];
    }
    return b;
  }

  @Test
  void magicsAreSha256PrefixesOfTheirTexts() {
    assertArrayEquals(bytes(47, 127, 65, 237, 145, 253, 15, 205), Magic.FIXED_INDEX);
    assertArrayEquals(bytes(0x1c, 0x91, 0x4e, 0xa5, 0x19, 0xba, 0xb3, 0xcd), Magic.DYNAMIC_INDEX);
    assertArrayEquals(bytes(66, 171, 56, 7, 190, 131, 112, 161), Magic.UNCOMPRESSED_BLOB);
    assertArrayEquals(bytes(49, 185, 88, 66, 111, 182, 163, 127), Magic.COMPRESSED_BLOB);
    assertArrayEquals(bytes(123, 103, 133, 190, 34, 45, 76, 240), Magic.ENCRYPTED_BLOB);
    assertArrayEquals(bytes(230, 89, 27, 191, 11, 191, 216, 11), Magic.ENCR_COMPR_BLOB);
  }

  static byte[] testData() {
    byte[] data = new byte[100000];
    for (int i = 0; i < data.length; i++) {
      data[i] = (byte) (i % 255);
    }
    return data;
  }

  @Test
  void blobDigestVectors() throws Exception {
    byte[] data = testData();
    byte[] key = new byte[32];
    Arrays.fill(key, (byte) 1);
    Digest plain = new BlobCodec(null).digest(data, 0, data.length);
    assertArrayEquals(bytes(83, 154, 96, 195), Arrays.copyOf(plain.toBytes(), 4));
    BlobCodec enc = new BlobCodec(new CryptConfig(key));
    Digest encrypted = enc.digest(data, 0, data.length);
    assertArrayEquals(bytes(50, 162, 191, 93), Arrays.copyOf(encrypted.toBytes(), 4));
    // and the blobs made from that data decode back to it under their digests
    for (boolean compress : new boolean[] {false, true}) {
      assertArrayEquals(
          data,
          enc.decodeChunk(enc.encode(data, 0, data.length, compress), encrypted, data.length));
      BlobCodec pc = new BlobCodec(null);
      assertArrayEquals(
          data, pc.decodeChunk(pc.encode(data, 0, data.length, compress), plain, data.length));
    }
  }

  @Test
  void fingerprintVector() {
    byte[] key = new byte[32];
    for (int i = 0; i < 32; i++) {
      key[i] = (byte) i;
    }
    byte[] expected =
        bytes(
            14, 171, 212, 70, 11, 110, 185, 202, 52, 80, 35, 222, 226, 183, 120, 199, 144, 229, 74,
            22, 131, 185, 101, 156, 10, 87, 174, 25, 144, 144, 21, 155);
    CryptConfig c = new CryptConfig(key);
    assertArrayEquals(expected, c.fingerprint());
    assertEquals("0e:ab:d4:46:0b:6e:b9:ca", c.shortFingerprint());
  }

  @Test
  void zeroChunkDigestVector() {
    assertEquals(
        "bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8",
        new BlobCodec(null).zeroDigest(4 * 1024 * 1024).hex());
  }

  static CryptConfig manifestTestKey() {
    byte[] k =
        SCrypt.generate("test".getBytes(StandardCharsets.US_ASCII), new byte[0], 65536, 8, 1, 32);
    return new CryptConfig(k);
  }

  static Manifest manifestVectorInput() {
    byte[] one = new byte[32];
    Arrays.fill(one, (byte) 1);
    byte[] two = new byte[32];
    Arrays.fill(two, (byte) 2);
    return new Manifest(
        "host",
        "elsa",
        Instant.parse("2020-06-26T13:56:05Z").getEpochSecond(),
        List.of(
            new Manifest.FileInfo("test1.img.fidx", Manifest.CryptMode.ENCRYPT, 200, one),
            new Manifest.FileInfo("abc.blob", Manifest.CryptMode.NONE, 200, two)),
        null);
  }

  @Test
  void manifestSignatureVector() throws Exception {
    CryptConfig key = manifestTestKey();
    byte[] json = manifestVectorInput().toJson(key);
    ObjectNode parsed = (ObjectNode) new ObjectMapper().readTree(json);
    assertEquals(
        "d7b446fb7db081662081d4b40fedd858a1d6307a5aff4ecff7d5bf4fd35679e9",
        parsed.get("signature").asText());
    // an unprotected note (as in the upstream test) does not change the signature
    ((ObjectNode) parsed.get("unprotected")).put("note", "This is not protected by the signature.");
    Manifest m = Manifest.parse(new ObjectMapper().writeValueAsBytes(parsed), key);
    assertEquals("elsa", m.backupId());
    assertEquals(
        HexFormat.of().formatHex(key.fingerprint()),
        m.keyFingerprint().orElseThrow().replace(":", ""));
  }
}
