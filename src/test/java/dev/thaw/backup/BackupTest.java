package dev.thaw.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.format.FixedIndex;
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
  @TempDir
  Path dir;

  @Test
  void secondBackupWritesNoNewChunks() throws Exception {
    MemoryStore store = new MemoryStore();
    byte[] image = Fixtures.image(5, 1000, 1);
    Path f = dir.resolve("disk");
    Files.write(f, image);
    Backup.Result r1 = new Backup(store, "vm", "100", null, 2).run(List.of(Backup.Source.parse(f.toString())));
    assertEquals(6, r1.chunks());
    // chunks 0,1,3,4 and the random tail chunk 5 are distinct, plus one zero chunk
    assertEquals(6, r1.written());
    Backup.Result r2 = new Backup(store, "vm", "100", null, 2).run(List.of(Backup.Source.parse("x.img:" + f)));
    assertEquals(0, r2.written());
    assertTrue(r2.snapshot().compareTo(r1.snapshot()) > 0, "second snapshot is later");
    Snapshot s1 = Snapshot.open(store, r1.snapshot(), null);
    assertEquals(List.of("disk.img"), s1.images());
    FixedIndex idx = s1.readIndex("disk.img");
    assertEquals(image.length, idx.size());
    assertEquals(List.of("x.img"), Snapshot.open(store, r2.snapshot(), null).images());
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
    assertThrows(IllegalArgumentException.class, () -> new Backup(new MemoryStore(), "vm", "1", null, 1)
        .run(List.of(Backup.Source.parse(f.toString()), Backup.Source.parse(f.toString()))));
  }

  @Test
  void missingSourceIsNamed() {
    Exception e = assertThrows(java.io.IOException.class, () -> new Backup(new MemoryStore(), "vm", "1", null, 1)
        .run(List.of(Backup.Source.parse(dir.resolve("nope.img").toString()))));
    assertTrue(e.getMessage().contains("nope.img"), e.getMessage());
    SnapshotPath.parse("vm/1/2026-01-01T00:00:00Z");
  }
}
