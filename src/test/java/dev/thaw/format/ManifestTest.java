package dev.thaw.format;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.thaw.crypto.CryptConfig;
import org.junit.jupiter.api.Test;

class ManifestTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void unsignedManifestRoundTrips() throws Exception {
    Manifest m = VectorsTest.manifestVectorInput();
    Manifest back = Manifest.parse(m.toJson(null), null);
    assertEquals("host", back.backupType());
    assertEquals(2, back.files().size());
    assertEquals(200, back.file("abc.blob").orElseThrow().size());
    assertEquals(Manifest.CryptMode.ENCRYPT, back.file("test1.img.fidx").orElseThrow().cryptMode());
    assertFalse(back.keyFingerprint().isPresent());
  }

  @Test
  void alteredSignedManifestFails() throws Exception {
    CryptConfig key = VectorsTest.manifestTestKey();
    ObjectNode obj = (ObjectNode) JSON.readTree(VectorsTest.manifestVectorInput().toJson(key));
    ((ObjectNode) obj.get("files").get(0)).put("size", 201);
    FormatException e = assertThrows(FormatException.class, () -> Manifest.parse(JSON.writeValueAsBytes(obj), key));
    assertTrue(e.getMessage().contains("signature"), e.getMessage());
  }

  @Test
  void wrongKeyIsNamedAsSuch() throws Exception {
    CryptConfig key = VectorsTest.manifestTestKey();
    byte[] json = VectorsTest.manifestVectorInput().toJson(key);
    CryptConfig other = new CryptConfig(new byte[32]);
    FormatException e = assertThrows(FormatException.class, () -> Manifest.parse(json, other));
    assertTrue(e.getMessage().contains("wrong key"), e.getMessage());
    assertTrue(e.getMessage().contains(key.shortFingerprint()), e.getMessage());
  }

  @Test
  void canonicalJsonSortsKeysAndEscapesLikeSerde() throws Exception {
    String text = "{\"b\":1,\"a\":{\"y\":\"x\\\"\\\\\\n\\u0001é\",\"x\":[true,null,-5]}}";
    assertEquals("{\"a\":{\"x\":[true,null,-5],\"y\":\"x\\\"\\\\\\n\\u0001é\"},\"b\":1}",
        new String(CanonicalJson.encode(JSON.readTree(text)), java.nio.charset.StandardCharsets.UTF_8));
  }

  @Test
  void malformedManifestsAreRefused() {
    assertThrows(FormatException.class, () -> Manifest.parse("not json".getBytes(), null));
    assertThrows(FormatException.class, () -> Manifest.parse("[1]".getBytes(), null));
    assertThrows(FormatException.class, () -> Manifest.parse(
        "{\"backup-type\":\"vm\",\"backup-id\":\"1\",\"backup-time\":1,\"files\":[{\"filename\":\"a\"}]}".getBytes(), null));
  }
}
