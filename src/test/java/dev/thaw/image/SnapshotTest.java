package dev.thaw.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.thaw.backup.Backup;
import dev.thaw.crypto.CryptConfig;
import dev.thaw.fetch.ChunkFetchException;
import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.Priority;
import dev.thaw.fetch.RetryPolicy;
import dev.thaw.format.BlobCodec;
import dev.thaw.format.BlobKind;
import dev.thaw.format.Digest;
import dev.thaw.format.FormatException;
import dev.thaw.format.Manifest;
import dev.thaw.store.SnapshotPath;
import dev.thaw.testing.Fixtures;
import dev.thaw.testing.MemoryStore;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.zip.CRC32;
import org.bouncycastle.crypto.generators.SCrypt;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Which snapshots open under which key, and with which codec per archive: sign-only snapshots made
 * by thaw's writer and built by hand as PBS writes them, encrypted ones, and a manifest whose
 * signature was stripped by someone with write access to the datastore.
 */
@Timeout(120)
class SnapshotTest {
  private static final HexFormat HEX = HexFormat.of();
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final CryptConfig KEY = new CryptConfig(new byte[32]);
  private static final CryptConfig OTHER_KEY = new CryptConfig(filled(7));

  @TempDir Path dir;
  private final MemoryStore store = new MemoryStore();
  private final FetchPipeline pipeline =
      new FetchPipeline(
          store, 4, 2, new RetryPolicy(1, Duration.ofMillis(1), Duration.ofMillis(1)));
  private final List<String> notes = new ArrayList<>();

  @AfterEach
  void close() {
    pipeline.close();
  }

  private static byte[] filled(int v) {
    byte[] b = new byte[32];
    Arrays.fill(b, (byte) v);
    return b;
  }

  private KeyPolicy policy(CryptConfig key, boolean allowUnsigned) {
    return KeyPolicy.of(key, allowUnsigned, notes::add);
  }

  /** Every byte of an image, through the pipeline (so with the codec's checks). */
  private byte[] read(Image img) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (int i = 0; i < img.chunkCount(); i++) {
      out.write(
          img.isZero(i)
              ? new byte[img.index().length(i)]
              : img.chunk(i, Priority.DEMAND).get().toArray());
    }
    return out.toByteArray();
  }

  private SnapshotPath backup(byte[] image, String id, Backup.Options options) throws Exception {
    Path f = dir.resolve(id + ".img");
    Files.write(f, image);
    return new Backup(store, "vm", id, options, 2)
        .run(List.of(new Backup.Source("a.img", f)))
        .snapshot();
  }

  private ObjectNode manifestJson(SnapshotPath s) throws Exception {
    byte[] blob = store.file(s + "/" + Manifest.FILE_NAME);
    return (ObjectNode) JSON.readTree(new BlobCodec(null).decode(blob, -1, 1 << 20));
  }

  private void putManifest(SnapshotPath s, byte[] json) {
    store.putFile(
        s + "/" + Manifest.FILE_NAME, new BlobCodec(null).encode(json, 0, json.length, true));
  }

  @Test
  void signOnlyBackupStoresPlainChunksAndSignsTheManifest() throws Exception {
    byte[] image = Fixtures.image(3, 777, 4);
    SnapshotPath s =
        backup(image, "100", new Backup.Options(KEY, Manifest.CryptMode.SIGN_ONLY, "root@pam"));
    ObjectNode m = manifestJson(s);
    assertTrue(m.get("signature").isTextual(), "signed");
    assertEquals(
        CryptConfig.formatFingerprint(KEY.fingerprint(), 32),
        m.get("unprotected").get("key-fingerprint").asText());
    assertEquals("sign-only", m.get("files").get(0).get("crypt-mode").asText());
    // chunk 0 lives under the plain SHA-256 of its data, as a plain blob
    Digest plain =
        Digest.of(MessageDigest.getInstance("SHA-256").digest(Arrays.copyOf(image, 4 << 20)));
    assertFalse(BlobCodec.kind(store.raw(plain)).encrypted());

    // with the key: the signature is checked and the chunks are read plainly
    Snapshot withKey = Snapshot.open(store, s, policy(KEY, false));
    assertTrue(withKey.manifest().signatureChecked());
    assertArrayEquals(image, read(withKey.openImage("a.img", pipeline)));
    assertEquals(List.of(), notes);

    // without it: restores, and says once that the signature was not checked
    Snapshot without = Snapshot.open(store, s, policy(null, false));
    KeyPolicy shared = policy(null, false);
    Snapshot.open(store, s, shared);
    Snapshot.open(store, s, shared);
    assertArrayEquals(image, read(without.openImage("a.img", pipeline)));
    assertEquals(2, notes.size(), notes.toString()); // one per policy, not one per open
    assertTrue(
        notes.get(0).contains("signature was not checked") && notes.get(0).contains(s.toString()),
        notes.get(0));

    // with another key: refused, the key named as wrong
    FormatException wrong =
        assertThrows(
            FormatException.class, () -> Snapshot.open(store, s, policy(OTHER_KEY, false)));
    assertTrue(wrong.getMessage().contains("wrong key"), wrong.getMessage());
  }

  @Test
  void encryptedBackupNeedsItsKeyAndItsChunksMustBeEncrypted() throws Exception {
    byte[] image = Fixtures.image(2, 100, 5);
    SnapshotPath s = backup(image, "101", Backup.Options.of(KEY));
    FormatException noKey =
        assertThrows(FormatException.class, () -> Snapshot.open(store, s, policy(null, false)));
    assertTrue(
        noKey.getMessage().contains("encrypted") && noKey.getMessage().contains("--keyfile"),
        noKey.getMessage());
    Snapshot snap = Snapshot.open(store, s, policy(KEY, false));
    Image img = snap.openImage("a.img", pipeline);
    assertArrayEquals(image, read(img));

    // a plain blob where the encrypted archive's chunk should be: refused, though the blob is sound
    Digest d0 = img.digest(0);
    byte[] data = Arrays.copyOf(image, 4 << 20);
    store.putRaw(d0, new BlobCodec(null).encode(data, 0, data.length, true));
    try (FetchPipeline fresh =
        new FetchPipeline(
            store, 2, 1, new RetryPolicy(1, Duration.ofMillis(1), Duration.ofMillis(1)))) {
      ExecutionException e =
          assertThrows(
              ExecutionException.class,
              () -> snap.openImage("a.img", fresh).chunk(0, Priority.DEMAND).get());
      assertTrue(e.getCause() instanceof ChunkFetchException, e.toString());
      assertTrue(e.getCause().getMessage().contains("not encrypted"), e.getCause().getMessage());
    }
  }

  /**
   * Someone with write access to the datastore strips the signature and key fingerprint from an
   * encrypted snapshot's manifest, sets crypt-mode none and points the index at plain chunks of
   * their own. With the key given, that snapshot must not open.
   */
  @Test
  void aManifestNotSignedByTheGivenKeyIsRefused() throws Exception {
    byte[] image = Fixtures.image(2, 100, 6);
    byte[] evil = Fixtures.image(2, 100, 66);
    SnapshotPath victim = backup(image, "102", Backup.Options.of(KEY));
    SnapshotPath attacker = backup(evil, "666", Backup.Options.of(null));
    ObjectNode forged = manifestJson(victim);
    forged.putNull("signature");
    ((ObjectNode) forged.get("unprotected")).remove("key-fingerprint");
    ObjectNode file = (ObjectNode) forged.get("files").get(0);
    ObjectNode theirs = (ObjectNode) manifestJson(attacker).get("files").get(0);
    file.put("crypt-mode", "none")
        .put("size", theirs.get("size").asLong())
        .put("csum", theirs.get("csum").asText());
    store.putFile(victim + "/a.img.fidx", store.file(attacker + "/a.img.fidx"));
    putManifest(victim, JSON.writeValueAsBytes(forged));

    FormatException e =
        assertThrows(FormatException.class, () -> Snapshot.open(store, victim, policy(KEY, false)));
    assertTrue(
        e.getMessage().contains(victim.toString())
            && e.getMessage().contains("not signed")
            && e.getMessage().contains("--allow-unsigned"),
        e.getMessage());
    assertEquals(List.of(), notes);

    // the explicit override opens it, loudly
    Snapshot opened = Snapshot.open(store, victim, policy(KEY, true));
    assertArrayEquals(evil, read(opened.openImage("a.img", pipeline)));
    assertEquals(1, notes.size());
    assertTrue(
        notes.get(0).startsWith("WARNING") && notes.get(0).contains(victim.toString()),
        notes.get(0));
    assertThrows(IllegalArgumentException.class, () -> KeyPolicy.of(null, true, n -> {}));

    // a signature that does not verify is refused too, override or not
    SnapshotPath s103 = backup(image, "103", Backup.Options.of(KEY));
    ObjectNode altered = manifestJson(s103);
    ((ObjectNode) altered.get("files").get(0)).put("crypt-mode", "none");
    putManifest(s103, JSON.writeValueAsBytes(altered));
    FormatException bad =
        assertThrows(FormatException.class, () -> Snapshot.open(store, s103, policy(KEY, true)));
    assertTrue(bad.getMessage().contains("signature"), bad.getMessage());
  }

  // --- vectors built by hand as PBS writes them
  // (pbs-datastore/src/{manifest,data_blob,fixed_index}.rs)

  /** PBS's manifest test key: scrypt("test", salt "", n 65536, r 8, p 1). */
  private static CryptConfig pbsTestKey() {
    return new CryptConfig(
        SCrypt.generate("test".getBytes(StandardCharsets.US_ASCII), new byte[0], 65536, 8, 1, 32));
  }

  private static final byte[] UNCOMPRESSED_BLOB_MAGIC_1_0 = {
    66, (byte) 171, 56, 7, (byte) 190, (byte) 131, 112, (byte) 161
  };
  private static final byte[] FIXED_INDEX_MAGIC_1_0 = {
    47, 127, 65, (byte) 237, (byte) 145, (byte) 253, 15, (byte) 205
  };

  /** An uncompressed DataBlob: magic, CRC-32 of the data (little endian), the data. */
  private static byte[] plainBlob(byte[] data) {
    CRC32 crc = new CRC32();
    crc.update(data);
    return ByteBuffer.allocate(12 + data.length)
        .order(ByteOrder.LITTLE_ENDIAN)
        .put(UNCOMPRESSED_BLOB_MAGIC_1_0)
        .putInt((int) crc.getValue())
        .put(data)
        .array();
  }

  /** A fixed index of one chunk: 4096-byte header, then the digest. */
  private static byte[] fixedIndex(long size, byte[] digest) throws Exception {
    ByteBuffer b = ByteBuffer.allocate(4096 + 32).order(ByteOrder.LITTLE_ENDIAN);
    b.put(FIXED_INDEX_MAGIC_1_0)
        .put(new byte[16])
        .putLong(1593179765L)
        .put(MessageDigest.getInstance("SHA-256").digest(digest))
        .putLong(size)
        .putLong(4L << 20);
    b.position(4096);
    b.put(digest);
    return b.array();
  }

  @Test
  void handBuiltSignOnlySnapshotAsPbsWritesIt() throws Exception {
    CryptConfig key = pbsTestKey();
    byte[] data = new byte[100_000];
    for (int i = 0; i < data.length; i++) {
      data[i] = (byte) (i % 255);
    }
    byte[] digest = MessageDigest.getInstance("SHA-256").digest(data);
    byte[] fidx = fixedIndex(data.length, digest);
    String csum = HEX.formatHex(MessageDigest.getInstance("SHA-256").digest(digest));
    // what the signature covers: canonical JSON (sorted keys, no blanks) without
    // unprotected/signature
    String canonical =
        "{\"backup-id\":\"elsa\",\"backup-time\":1593179765,\"backup-type\":\"host\","
            + "\"files\":[{\"crypt-mode\":\"sign-only\",\"csum\":\""
            + csum
            + "\",\"filename\":\"disk.img.fidx\","
            + "\"size\":100000}]}";
    String sig = HEX.formatHex(key.authTag(canonical.getBytes(StandardCharsets.UTF_8)));
    String fp = CryptConfig.formatFingerprint(key.fingerprint(), 32);
    String manifest =
        "{\n  \"backup-id\": \"elsa\",\n  \"backup-time\": 1593179765,\n  \"backup-type\": \"host\",\n"
            + "  \"files\": [\n    {\n      \"crypt-mode\": \"sign-only\",\n      \"csum\": \""
            + csum
            + "\",\n"
            + "      \"filename\": \"disk.img.fidx\",\n      \"size\": 100000\n    }\n  ],\n"
            + "  \"signature\": \""
            + sig
            + "\",\n  \"unprotected\": {\n    \"key-fingerprint\": \""
            + fp
            + "\"\n  }\n}";
    SnapshotPath s = SnapshotPath.parse("host/elsa/2020-06-26T13:56:05Z");
    store.putFile(s + "/index.json.blob", plainBlob(manifest.getBytes(StandardCharsets.UTF_8)));
    store.putFile(s + "/disk.img.fidx", fidx);
    store.writeChunk(Digest.of(digest), plainBlob(data));

    Snapshot snap = Snapshot.open(store, s, policy(key, false));
    assertTrue(snap.manifest().signatureChecked());
    assertFalse(snap.encrypted());
    assertArrayEquals(data, read(snap.openImage("disk.img", pipeline)));
    assertArrayEquals(
        data, read(Snapshot.open(store, s, policy(null, false)).openImage("disk.img", pipeline)));
    assertEquals(1, notes.size());
    assertThrows(FormatException.class, () -> Snapshot.open(store, s, policy(OTHER_KEY, false)));

    // one altered byte of what is signed (the archive's crypt-mode) and the key refuses it
    store.putFile(
        s + "/index.json.blob",
        plainBlob(manifest.replace("\"sign-only\"", "\"none\"").getBytes(StandardCharsets.UTF_8)));
    FormatException e =
        assertThrows(FormatException.class, () -> Snapshot.open(store, s, policy(key, false)));
    assertTrue(e.getMessage().contains("signature"), e.getMessage());
  }

  @Test
  void pbsManifestVectorChoosesTheCodecPerArchive() throws Exception {
    // PBS's own test manifest (manifest.rs test_manifest_signature): signature d7b446fb...
    CryptConfig key = pbsTestKey();
    String manifest =
        "{\"backup-type\":\"host\",\"backup-id\":\"elsa\",\"backup-time\":1593179765,"
            + "\"files\":[{\"filename\":\"test1.img.fidx\",\"crypt-mode\":\"encrypt\",\"size\":200,\"csum\":\""
            + "01".repeat(32)
            + "\"},{\"filename\":\"abc.blob\",\"crypt-mode\":\"none\",\"size\":200,\"csum\":\""
            + "02".repeat(32)
            + "\"}],\"unprotected\":{\"note\":\"This is not protected by the signature.\"},"
            + "\"signature\":\"d7b446fb7db081662081d4b40fedd858a1d6307a5aff4ecff7d5bf4fd35679e9\"}";
    SnapshotPath s = SnapshotPath.parse("host/elsa/2020-06-26T13:56:05Z");
    store.putFile(s + "/index.json.blob", plainBlob(manifest.getBytes(StandardCharsets.UTF_8)));
    Snapshot snap = Snapshot.open(store, s, policy(key, false));
    Manifest m = snap.manifest();
    assertTrue(m.signatureChecked());
    assertSame(key, snap.codec(m.file("test1.img.fidx").orElseThrow()).crypt());
    assertEquals(null, snap.codec(m.file("abc.blob").orElseThrow()).crypt());
    // without a key, its encrypted archive keeps it shut
    assertThrows(FormatException.class, () -> Snapshot.open(store, s, policy(null, false)));
    assertEquals(BlobKind.UNCOMPRESSED, BlobCodec.kind(plainBlob(new byte[1])));
  }
}
