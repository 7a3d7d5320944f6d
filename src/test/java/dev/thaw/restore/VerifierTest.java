package dev.thaw.restore;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.backup.Backup;
import dev.thaw.crypto.CryptConfig;
import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.RetryPolicy;
import dev.thaw.format.BlobCodec;
import dev.thaw.format.Manifest;
import dev.thaw.image.KeyPolicy;
import dev.thaw.image.Snapshot;
import dev.thaw.store.SnapshotPath;
import dev.thaw.testing.Fixtures;
import dev.thaw.testing.MemoryStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** What a verify checks, and that it names what it did not check. */
@Timeout(60)
class VerifierTest {
  @TempDir Path dir;
  private final MemoryStore store = new MemoryStore();

  private Verifier.Report verify(SnapshotPath s, CryptConfig key) throws Exception {
    try (FetchPipeline p =
        new FetchPipeline(
            store, 4, 2, new RetryPolicy(1, Duration.ofMillis(1), Duration.ofMillis(1)))) {
      return new Verifier(Snapshot.open(store, s, KeyPolicy.strict(key)), p, 4).run();
    }
  }

  private SnapshotPath backup(Backup.Options options) throws Exception {
    Path f = dir.resolve("a.img");
    Files.write(f, Fixtures.image(2, 500, 12));
    return new Backup(store, "vm", "100", options, 2)
        .run(List.of(new Backup.Source("a.img", f)))
        .snapshot();
  }

  /** Adds a file to a snapshot and to its (unsigned) manifest. */
  private void add(SnapshotPath s, String name, Manifest.CryptMode mode, byte[] data)
      throws Exception {
    Manifest m = Snapshot.readManifest(store, s, null);
    List<Manifest.FileInfo> files = new ArrayList<>(m.files());
    files.add(
        new Manifest.FileInfo(
            name, mode, data.length, MessageDigest.getInstance("SHA-256").digest(data)));
    byte[] json =
        new Manifest(m.backupType(), m.backupId(), m.backupTime(), files, null).toJson(null);
    store.putFile(s + "/" + name, data);
    store.putFile(
        s + "/" + Manifest.FILE_NAME, new BlobCodec(null).encode(json, 0, json.length, true));
  }

  @Test
  void aDynamicIndexIsNamedAsNotChecked() throws Exception {
    SnapshotPath s = backup(Backup.Options.of(null));
    assertEquals(List.of(), verify(s, null).notChecked());
    add(s, "root.pxar.didx", Manifest.CryptMode.NONE, new byte[4096]);
    Verifier.Report r = verify(s, null);
    assertEquals(List.of(), r.problems());
    assertEquals(1, r.notChecked().size());
    assertEquals("root.pxar.didx", r.notChecked().get(0).file());
    assertTrue(
        r.notChecked().get(0).reason().contains("dynamic index"), r.notChecked().get(0).reason());
    assertTrue(r.chunks() > 0, "the image was still checked");
  }

  @Test
  void blobsAreCheckedWithTheirOwnCryptMode() throws Exception {
    CryptConfig key = new CryptConfig(new byte[32]);
    SnapshotPath s = backup(new Backup.Options(key, Manifest.CryptMode.SIGN_ONLY, "root@pam"));
    assertEquals(List.of(), verify(s, key).problems());
    assertEquals(List.of(), verify(s, null).problems());

    byte[] conf = "memory: 2048\n".getBytes(java.nio.charset.StandardCharsets.UTF_8);
    SnapshotPath plain = backup(Backup.Options.of(null));
    add(
        plain,
        "qemu-server.conf.blob",
        Manifest.CryptMode.NONE,
        new BlobCodec(null).encode(conf, 0, conf.length, true));
    assertEquals(List.of(), verify(plain, null).problems());
    // a blob whose kind contradicts its crypt-mode is a problem
    add(
        plain,
        "fw.conf.blob",
        Manifest.CryptMode.NONE,
        new BlobCodec(key).encode(conf, 0, conf.length, true));
    List<Verifier.Problem> p = verify(plain, null).problems();
    assertEquals(1, p.size(), p.toString());
    assertTrue(p.get(0).message().contains("encrypted"), p.get(0).message());
  }
}
