package dev.thaw.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.format.Digest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LocalStoreTest {
  @TempDir
  Path root;

  @Test
  void writesChunksAtomicallyWhereProxmoxKeepsThem() throws Exception {
    WritableStore s = Stores.openWritable(root.toString());
    Digest d = Digest.parse("bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8");
    assertFalse(s.hasChunk(d));
    s.writeChunk(d, new byte[] {1, 2, 3});
    assertTrue(Files.exists(root.resolve(".chunks/bb9f/" + d.hex())));
    assertTrue(s.hasChunk(d));
    assertArrayEquals(new byte[] {1, 2, 3}, s.readChunk(d));
    try (Stream<Path> files = Files.list(root.resolve(".chunks/bb9f"))) {
      assertEquals(1, files.count(), "no temporary files left behind");
    }
    NotFoundException nf = assertThrows(NotFoundException.class,
        () -> s.readChunk(Digest.parse("00".repeat(32))));
    assertTrue(nf.getMessage().contains(root.toString()), nf.getMessage());
  }

  @Test
  void snapshotsAppearOnlyOnCommitAndAreListed() throws Exception {
    WritableStore s = Stores.openWritable("file://" + root);
    SnapshotPath p = SnapshotPath.parse("vm/100/2026-11-22T03:04:05Z");
    try (WritableStore.SnapshotWriter w = s.createSnapshot(p)) {
      w.writeFile("index.json.blob", new byte[] {9});
      assertEquals(List.of(), s.listSnapshots());
      w.commit();
    }
    try (WritableStore.SnapshotWriter w = s.createSnapshot(SnapshotPath.parse("ct/7/2026-11-22T03:04:06Z"))) {
      w.writeFile("index.json.blob", new byte[] {8});
      // not committed: discarded
    }
    Files.createDirectories(root.resolve("ns/lab/host/pc/2025-01-01T00:00:00Z"));
    Files.createDirectories(root.resolve("vm/100/not-a-time"));
    assertEquals(List.of("ns/lab/host/pc/2025-01-01T00:00:00Z", "vm/100/2026-11-22T03:04:05Z"),
        s.listSnapshots().stream().map(Object::toString).toList());
    assertArrayEquals(new byte[] {9}, s.readFile(p, "index.json.blob"));
    assertThrows(IllegalArgumentException.class, () -> s.readFile(p, "../../x"));
    try (WritableStore.SnapshotWriter w = s.createSnapshot(p)) {
      w.writeFile("index.json.blob", new byte[] {7});
      assertThrows(java.nio.file.FileAlreadyExistsException.class, w::commit);
    }
  }

  @Test
  void schemesAreChecked() {
    assertThrows(IllegalArgumentException.class, () -> Stores.open("s3://Not_A_Bucket/x", Stores.Options.defaults(1)));
    assertThrows(IllegalArgumentException.class, () -> Stores.open("ftp://host/x", Stores.Options.defaults(1)));
    assertThrows(IllegalArgumentException.class, () -> Stores.openWritable("http://127.0.0.1/x"));
  }
}
