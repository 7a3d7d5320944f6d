package dev.thaw.store;

import dev.thaw.testing.TestStores;
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
  private static final int MAX = 1 << 20;
  @TempDir
  Path root;

  @Test
  void writesChunksAtomicallyWhereProxmoxKeepsThem() throws Exception {
    WritableStore s = TestStores.openWritable(root.toString());
    Digest d = Digest.parse("bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8");
    assertFalse(s.hasChunk(d));
    s.writeChunk(d, new byte[] {1, 2, 3});
    assertTrue(Files.exists(root.resolve(".chunks/bb9f/" + d.hex())));
    assertTrue(s.hasChunk(d));
    assertArrayEquals(new byte[] {1, 2, 3}, s.readChunk(d, MAX));
    try (Stream<Path> files = Files.list(root.resolve(".chunks/bb9f"))) {
      assertEquals(1, files.count(), "no temporary files left behind");
    }
    NotFoundException nf = assertThrows(NotFoundException.class,
        () -> s.readChunk(Digest.parse("00".repeat(32)), MAX));
    assertTrue(nf.getMessage().contains(root.toString()), nf.getMessage());
  }

  @Test
  void snapshotsAppearOnlyOnCommitAndAreListed() throws Exception {
    WritableStore s = TestStores.openWritable("file://" + root);
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

  private ChunkStore reader() {
    return TestStores.open(root.toString(), Stores.Options.defaults(1));
  }

  @Test
  void aChunkLargerThanItCanBeIsRefusedWithoutReadingIt() throws Exception {
    Digest d = Digest.parse("cd".repeat(32));
    Path f = root.resolve(ChunkStore.chunkPath(d));
    Files.createDirectories(f.getParent());
    try (java.io.RandomAccessFile raf = new java.io.RandomAccessFile(f.toFile(), "rw")) {
      raf.setLength(3L << 30); // sparse: reading it whole would take 3 GiB of heap
    }
    try (ChunkStore s = reader()) {
      StoreException e = assertThrows(StoreException.class, () -> s.readChunk(d, MAX));
      assertFalse(e.retryable(), "no retry mends an oversized chunk");
      assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains("3221225472 bytes"),
          e.getMessage());
    }
  }

  @Test
  void aChunkThatIsNotARegularFileIsRefusedAtOnce() throws Exception {
    Digest zero = Digest.parse("de".repeat(32));
    Digest fifo = Digest.parse("df".repeat(32));
    Path z = root.resolve(ChunkStore.chunkPath(zero));
    Path p = root.resolve(ChunkStore.chunkPath(fifo));
    Files.createDirectories(z.getParent());
    Files.createSymbolicLink(z, Path.of("/dev/zero"));
    Files.createDirectories(p.getParent());
    assertEquals(0, new ProcessBuilder("mkfifo", p.toString()).start().waitFor());
    try (ChunkStore s = reader()) {
      for (Digest d : List.of(zero, fifo)) {
        long t0 = System.nanoTime();
        StoreException e = assertThrows(StoreException.class, () -> s.readChunk(d, MAX));
        assertTrue(e.getMessage().contains("not a regular file") && e.getMessage().contains(d.hex()),
            e.getMessage());
        assertFalse(e.retryable());
        assertTrue(System.nanoTime() - t0 < 5_000_000_000L, "refused without blocking on the FIFO");
      }
    }
  }

  @Test
  void anUnreadableDatastoreIsNamedAndNotRetried() throws Exception {
    Files.createDirectories(root.resolve("vm/100"));
    java.nio.file.attribute.PosixFileAttributeView v =
        Files.getFileAttributeView(root.resolve("vm"), java.nio.file.attribute.PosixFileAttributeView.class);
    v.setPermissions(java.util.Set.of());
    try (ChunkStore s = reader()) {
      org.junit.jupiter.api.Assumptions.assumeFalse(Files.isReadable(root.resolve("vm")),
          "running with CAP_DAC_OVERRIDE (root): permissions do not apply");
      StoreException e = assertThrows(StoreException.class, s::listSnapshots);
      assertFalse(e.retryable());
      assertTrue(e.getMessage().contains("permission denied") && e.getMessage().contains("vm"), e.getMessage());
    } finally {
      v.setPermissions(java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
    }
  }

  @Test
  void schemesAreChecked() {
    assertThrows(IllegalArgumentException.class, () -> TestStores.open("s3://Not_A_Bucket/x", Stores.Options.defaults(1)));
    assertThrows(IllegalArgumentException.class, () -> TestStores.open("ftp://host/x", Stores.Options.defaults(1)));
    assertThrows(IllegalArgumentException.class, () -> TestStores.openWritable("http://127.0.0.1/x"));
  }
}
