package dev.thaw.format;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.thaw.crypto.CryptConfig;
import java.nio.charset.StandardCharsets;
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
    FormatException e =
        assertThrows(FormatException.class, () -> Manifest.parse(JSON.writeValueAsBytes(obj), key));
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
    assertEquals(
        "{\"a\":{\"x\":[true,null,-5],\"y\":\"x\\\"\\\\\\n\\u0001é\"},\"b\":1}",
        new String(
            CanonicalJson.encode(JSON.readTree(text)), java.nio.charset.StandardCharsets.UTF_8));
  }

  private static byte[] manifestWith(String... names) {
    StringBuilder files = new StringBuilder();
    for (String n : names) {
      files
          .append(files.length() == 0 ? "" : ",")
          .append("{\"filename\":")
          .append(JSON.<com.fasterxml.jackson.databind.JsonNode>valueToTree(n).toString())
          .append(",\"size\":")
          .append(n.startsWith("neg") ? -5 : 10)
          .append(",\"csum\":\"")
          .append("ab".repeat(32))
          .append("\"}");
    }
    return ("{\"backup-type\":\"vm\",\"backup-id\":\"1\",\"backup-time\":1,\"files\":["
            + files
            + "]}")
        .getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void entriesThatAreNoPlainFileNameOrComeTwiceAreLeftOutWithAWarning() throws Exception {
    Manifest m =
        Manifest.parse(
            manifestWith(
                "a.img.fidx",
                "../x.img.fidx",
                "d/e.img.fidx",
                ".thaw.fidx",
                "a.img.fidx",
                "neg.img.fidx",
                "ctl\u0001.img.fidx",
                "b.img.fidx"),
            null);
    assertEquals(
        java.util.List.of("a.img.fidx", "b.img.fidx"),
        m.files().stream().map(Manifest.FileInfo::filename).toList());
    assertEquals(6, m.warnings().size(), m.warnings().toString());
    assertTrue(
        m.warnings().get(0).contains("'../x.img.fidx' is not a plain file name"),
        m.warnings().get(0));
    assertTrue(m.warnings().get(3).contains("listed twice"), m.warnings().get(3));
    assertTrue(m.warnings().get(4).contains("negative size"), m.warnings().get(4));
    assertTrue(m.warnings().get(5).contains("ctl\\x01"), m.warnings().get(5));
    assertEquals(10, m.file("a.img.fidx").orElseThrow().size());
  }

  @Test
  void aManifestListingMoreFilesThanASnapshotMayHaveIsRefusedAndLookupsAreQuick() throws Exception {
    String[] many = new String[Manifest.MAX_FILES + 1];
    for (int i = 0; i < many.length; i++) {
      many[i] = "disk" + i + ".img.fidx";
    }
    FormatException e =
        assertThrows(FormatException.class, () -> Manifest.parse(manifestWith(many), null));
    assertTrue(e.getMessage().contains("10001 files"), e.getMessage());
    Manifest m =
        Manifest.parse(manifestWith(java.util.Arrays.copyOf(many, Manifest.MAX_FILES)), null);
    long t0 = System.nanoTime();
    for (String n : java.util.Arrays.copyOf(many, Manifest.MAX_FILES)) {
      assertTrue(m.file(n).isPresent());
    }
    // a linear search per lookup takes seconds here (10^8 comparisons); a map, milliseconds
    assertTrue(System.nanoTime() - t0 < 2_000_000_000L, "lookups of every file of a big manifest");
  }

  @Test
  void malformedManifestsAreRefused() {
    assertThrows(
        FormatException.class,
        () -> Manifest.parse("not json".getBytes(StandardCharsets.UTF_8), null));
    assertThrows(
        FormatException.class, () -> Manifest.parse("[1]".getBytes(StandardCharsets.UTF_8), null));
    assertThrows(
        FormatException.class,
        () ->
            Manifest.parse(
                "{\"backup-type\":\"vm\",\"backup-id\":\"1\",\"backup-time\":1,\"files\":[{\"filename\":\"a\"}]}"
                    .getBytes(StandardCharsets.UTF_8),
                null));
  }
}
