package dev.thaw.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.crypto.CryptConfig;
import dev.thaw.format.FixedIndex;
import dev.thaw.format.Manifest;
import dev.thaw.image.KeyPolicy;
import dev.thaw.image.Snapshot;
import dev.thaw.store.SnapshotPath;
import dev.thaw.testing.Fixtures;
import dev.thaw.testing.MemoryStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BackupTest {
  @TempDir Path dir;

  @Test
  void secondBackupWritesNoNewChunks() throws Exception {
    MemoryStore store = new MemoryStore();
    byte[] image = Fixtures.image(5, 1000, 1);
    Path f = dir.resolve("disk");
    Files.write(f, image);
    Backup.Result r1 =
        new Backup(store, "vm", "100", Backup.Options.of(null), 2)
            .run(List.of(Backup.Source.parse(f.toString())));
    assertEquals(6, r1.chunks());
    // chunks 0,1,3,4 and the random tail chunk 5 are distinct, plus one zero chunk
    assertEquals(6, r1.written());
    Backup.Result r2 =
        new Backup(store, "vm", "100", Backup.Options.of(null), 2)
            .run(List.of(Backup.Source.parse("x.img:" + f)));
    assertEquals(0, r2.written());
    assertTrue(r2.snapshot().compareTo(r1.snapshot()) > 0, "second snapshot is later");
    Snapshot s1 = Snapshot.open(store, r1.snapshot(), KeyPolicy.strict(null));
    assertEquals(List.of("disk.img"), s1.images());
    FixedIndex idx = s1.readIndex("disk.img");
    assertEquals(image.length, idx.size());
    assertEquals(
        List.of("x.img"), Snapshot.open(store, r2.snapshot(), KeyPolicy.strict(null)).images());
  }

  @Test
  void aNewGroupGetsAnOwnerAndAnExistingOneKeepsIt() throws Exception {
    MemoryStore store = new MemoryStore();
    Path f = dir.resolve("d.img");
    Files.write(f, Fixtures.image(1, 10, 3));
    new Backup(store, "vm", "100", Backup.Options.of(null), 1)
        .run(List.of(Backup.Source.parse(f.toString())));
    assertEquals("root@pam", store.owner("vm/100"));
    new Backup(
            store,
            "vm",
            "100",
            new Backup.Options(null, Manifest.CryptMode.NONE, "backup@pbs!thaw"),
            1)
        .run(List.of(Backup.Source.parse(f.toString())));
    assertEquals("root@pam", store.owner("vm/100"), "an existing owner is never changed");
    new Backup(
            store,
            "ct",
            "7",
            new Backup.Options(null, Manifest.CryptMode.NONE, "backup@pbs!thaw"),
            1)
        .run(List.of(Backup.Source.parse(f.toString())));
    assertEquals("backup@pbs!thaw", store.owner("ct/7"));
    for (String bad :
        List.of(
            "root",
            "root@",
            "ro ot@pam",
            "a:b@pam",
            "root@p",
            "root@pam!",
            "x".repeat(61) + "@pam")) {
      assertThrows(
          IllegalArgumentException.class,
          () -> new Backup.Options(null, Manifest.CryptMode.NONE, bad),
          bad);
    }
  }

  @Test
  void cryptModeAndKeyMustAgree() {
    CryptConfig key = new CryptConfig(new byte[32]);
    assertThrows(
        IllegalArgumentException.class,
        () -> new Backup.Options(null, Manifest.CryptMode.SIGN_ONLY, "root@pam"));
    assertThrows(
        IllegalArgumentException.class,
        () -> new Backup.Options(null, Manifest.CryptMode.ENCRYPT, "root@pam"));
    assertThrows(
        IllegalArgumentException.class,
        () -> new Backup.Options(key, Manifest.CryptMode.NONE, "root@pam"));
    assertEquals(Manifest.CryptMode.ENCRYPT, Backup.Options.of(key).cryptMode());
  }

  @Test
  void anEmptySourceIsRefusedBeforeAnythingIsWritten() throws Exception {
    MemoryStore store = new MemoryStore();
    Path full = dir.resolve("full.img");
    Files.write(full, Fixtures.image(1, 0, 8));
    Path empty = Files.createFile(dir.resolve("empty.img"));
    java.io.IOException e =
        assertThrows(
            java.io.IOException.class,
            () ->
                new Backup(store, "vm", "1", Backup.Options.of(null), 1)
                    .run(
                        List.of(
                            Backup.Source.parse(full.toString()),
                            Backup.Source.parse(empty.toString()))));
    assertTrue(
        e.getMessage().contains("empty.img") && e.getMessage().contains("empty"), e.getMessage());
    assertEquals(0, store.chunkCount());
    assertEquals(List.of(), store.listSnapshots());
    assertEquals(null, store.owner("vm/1"));
  }

  @Test
  void sourceNames() {
    assertEquals("a.img", Backup.Source.parse("/x/y/a").archive());
    assertEquals("a.img", Backup.Source.parse("/x/y/a.img").archive());
    assertEquals("drive-scsi0.img", Backup.Source.parse("drive-scsi0.img:/dev/sdb").archive());
    assertEquals(Path.of("/dev/sdb"), Backup.Source.parse("drive-scsi0.img:/dev/sdb").path());
    assertThrows(IllegalArgumentException.class, () -> Backup.Source.parse("/x/.hidden"));
  }

  @Test
  void duplicateArchiveNamesAreRefused() throws Exception {
    Path f = dir.resolve("a.img");
    Files.write(f, new byte[10]);
    assertThrows(
        IllegalArgumentException.class,
        () ->
            new Backup(new MemoryStore(), "vm", "1", Backup.Options.of(null), 1)
                .run(
                    List.of(Backup.Source.parse(f.toString()), Backup.Source.parse(f.toString()))));
  }

  @Test
  void missingSourceIsNamed() {
    Exception e =
        assertThrows(
            java.io.IOException.class,
            () ->
                new Backup(new MemoryStore(), "vm", "1", Backup.Options.of(null), 1)
                    .run(List.of(Backup.Source.parse(dir.resolve("nope.img").toString()))));
    assertTrue(e.getMessage().contains("nope.img"), e.getMessage());
    SnapshotPath.parse("vm/1/2026-01-01T00:00:00Z");
  }
}
