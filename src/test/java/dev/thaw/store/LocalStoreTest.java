package dev.thaw.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.thaw.format.Digest;
import dev.thaw.testing.TestStores;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LocalStoreTest {
  private static final int MAX = 1 << 20;
  @TempDir Path root;

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
    NotFoundException nf =
        assertThrows(
            NotFoundException.class, () -> s.readChunk(Digest.parse("00".repeat(32)), MAX));
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
    try (WritableStore.SnapshotWriter w =
        s.createSnapshot(SnapshotPath.parse("ct/7/2026-11-22T03:04:06Z"))) {
      w.writeFile("index.json.blob", new byte[] {8});
      // not committed: discarded
    }
    Files.createDirectories(root.resolve("ns/lab/host/pc/2025-01-01T00:00:00Z"));
    Files.write(
        root.resolve("ns/lab/host/pc/2025-01-01T00:00:00Z/index.json.blob"), new byte[] {1});
    Files.createDirectories(root.resolve("vm/100/not-a-time"));
    // a backup in progress or an aborted one: no manifest, not a snapshot (as PBS lists them)
    Files.createDirectories(root.resolve("vm/100/2026-11-23T00:00:00Z"));
    Files.write(root.resolve("vm/100/2026-11-23T00:00:00Z/a.img.fidx"), new byte[] {1});
    assertEquals(
        List.of("ns/lab/host/pc/2025-01-01T00:00:00Z", "vm/100/2026-11-22T03:04:05Z"),
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
      assertTrue(
          e.getMessage().contains(f.toString()) && e.getMessage().contains("3221225472 bytes"),
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
        assertTrue(
            e.getMessage().contains("not a regular file") && e.getMessage().contains(d.hex()),
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
        Files.getFileAttributeView(
            root.resolve("vm"), java.nio.file.attribute.PosixFileAttributeView.class);
    v.setPermissions(java.util.Set.of());
    try (ChunkStore s = reader()) {
      org.junit.jupiter.api.Assumptions.assumeFalse(
          Files.isReadable(root.resolve("vm")),
          "running with CAP_DAC_OVERRIDE (root): permissions do not apply");
      StoreException e = assertThrows(StoreException.class, s::listSnapshots);
      assertFalse(e.retryable());
      assertTrue(
          e.getMessage().contains("permission denied") && e.getMessage().contains("vm"),
          e.getMessage());
    } finally {
      v.setPermissions(java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
    }
  }

  @Test
  void schemesAreChecked() {
    assertThrows(
        IllegalArgumentException.class,
        () -> TestStores.open("s3://Not_A_Bucket/x", Stores.Options.defaults(1)));
    assertThrows(
        IllegalArgumentException.class,
        () -> TestStores.open("ftp://host/x", Stores.Options.defaults(1)));
    assertThrows(
        IllegalArgumentException.class, () -> TestStores.openWritable("http://127.0.0.1/x"));
    // no way to write safely into an S3 datastore a PBS uses, and no directories to make there
    assertThrows(
        IllegalArgumentException.class,
        () ->
            Stores.access(Stores.Options.defaults(1))
                .openWritable("s3://backups/ds", new WriteOptions(true, false)));
    assertThrows(
        IllegalArgumentException.class,
        () ->
            Stores.access(Stores.Options.defaults(1))
                .openWritable("s3://backups/ds", new WriteOptions(false, true)));
  }

  private static String mode(Path p) throws Exception {
    return PosixFilePermissions.toString(
        Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS));
  }

  private static int uid(Path p) throws Exception {
    return ((Number) Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS)).intValue();
  }

  private static int gid(Path p) throws Exception {
    return ((Number) Files.getAttribute(p, "unix:gid", LinkOption.NOFOLLOW_LINKS)).intValue();
  }

  private static final Digest CHUNK =
      Digest.parse("bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8");
  private static final SnapshotPath SNAP = SnapshotPath.parse("vm/100/2026-11-22T03:04:05Z");

  /** A chunk, a group owner and a snapshot, as a backup writes them. */
  private static void writeSome(WritableStore s, SnapshotPath snap) throws Exception {
    s.writeChunk(CHUNK, new byte[] {1, 2, 3});
    s.ensureGroupOwner(snap, "root@pam");
    try (WritableStore.SnapshotWriter w = s.createSnapshot(snap)) {
      w.writeFile("index.json.blob", new byte[] {9});
      w.commit();
    }
  }

  @Test
  void aNewDatastoreIsMadeAsProxmoxBackupServerMakesOne() throws Exception {
    Path ds = root.resolve("new/ds");
    try (WritableStore s = TestStores.openWritable(ds.toString())) {
      writeSome(s, SNAP);
      assertFalse(s.ensureGroupOwner(SNAP, "other@pbs"), "an existing owner is kept");
    }
    assertEquals("rwxr-xr-x", mode(ds));
    assertEquals("rw-r--r--", mode(ds.resolve(".lock")));
    assertEquals(0, Files.size(ds.resolve(".lock")));
    assertEquals("rwxr-x---", mode(ds.resolve(".chunks")));
    assertEquals("rwxr-x---", mode(ds.resolve(".chunks/bb9f")));
    assertEquals("rw-r--r--", mode(ds.resolve(".chunks/bb9f/" + CHUNK.hex())));
    assertEquals("rwxr-xr-x", mode(ds.resolve("vm/100")));
    assertEquals("rwxr-xr-x", mode(ds.resolve(SNAP.toString())));
    assertEquals("rw-r--r--", mode(ds.resolve(SNAP + "/index.json.blob")));
    assertEquals("root@pam\n", Files.readString(ds.resolve("vm/100/owner")));
    assertEquals("rw-r--r--", mode(ds.resolve("vm/100/owner")));
    try (Stream<Path> files = Files.list(ds.resolve("vm/100"))) {
      assertEquals(2, files.count(), "the snapshot and the owner, no temporary files");
    }
  }

  private static final int PBS_UID = 34;
  private static final int PBS_GID = 34;

  /** A datastore as a PBS keeps it: made by its backup user (here: chowned to uid 34). */
  private Path pbsDatastore() throws Exception {
    assumeTrue(uid(Path.of("/proc/self")) == 0, "needs root to give files to another user");
    Path ds = root.resolve("pbs");
    try (WritableStore s = TestStores.openWritable(ds.toString())) {
      writeSome(s, SNAP);
    }
    try (Stream<Path> all = Files.walk(ds)) {
      for (Path p : all.toList()) {
        Files.setAttribute(p, "unix:uid", PBS_UID, LinkOption.NOFOLLOW_LINKS);
        Files.setAttribute(p, "unix:gid", PBS_GID, LinkOption.NOFOLLOW_LINKS);
      }
    }
    return ds;
  }

  @Test
  void aDatastoreThatAPbsManagesIsRefusedForWritingAndStaysReadable() throws Exception {
    Path ds = pbsDatastore();
    StoreException e =
        assertThrows(StoreException.class, () -> TestStores.openWritable(ds.toString()));
    assertTrue(
        e.getMessage().contains("Proxmox Backup Server manages it")
            && e.getMessage().contains("--as-datastore-owner")
            && e.getMessage().contains(ds.toString()),
        e.getMessage());
    // the lock file alone tells as well
    Files.setAttribute(ds.resolve(".chunks"), "unix:uid", 0, LinkOption.NOFOLLOW_LINKS);
    assertThrows(StoreException.class, () -> TestStores.openWritable(ds.toString()));
    // reading is always allowed
    try (ChunkStore r = TestStores.open(ds.toString(), Stores.Options.defaults(1))) {
      assertEquals(List.of(SNAP), r.listSnapshots());
      assertArrayEquals(new byte[] {1, 2, 3}, r.readChunk(CHUNK, MAX));
    }
  }

  private static boolean hasPython() {
    return java.util.Arrays.stream(System.getenv("PATH").split(":"))
        .anyMatch(d -> Files.isExecutable(Path.of(d, "python3")));
  }

  /** Runs a POSIX-lock probe on {@code lock} in another process: "free" or "busy". */
  private static String probeExclusiveLock(Path lock) throws Exception {
    Process p =
        new ProcessBuilder(
                "python3",
                "-c",
                """
        import fcntl, sys
        f = open(sys.argv[1], 'r+')
        try:
          fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB); print('free')
        except OSError: print('busy')
        """,
                lock.toString())
            .redirectErrorStream(true)
            .start();
    String out =
        new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8)
            .strip();
    p.waitFor();
    return out;
  }

  @Test
  void asTheDatastoreOwnerFilesBelongToItAndPbsGarbageCollectionIsLockedOut() throws Exception {
    Path ds = pbsDatastore();
    assumeTrue(hasPython(), "needs python3 for a lock held by another process");
    SnapshotPath snap = SnapshotPath.parse("ct/7/2026-11-23T03:04:05Z");
    Digest other = Digest.parse("ab".repeat(32));
    try (WritableStore s =
        Stores.access(Stores.Options.defaults(1))
            .openWritable(ds.toString(), new WriteOptions(true, false))) {
      assertEquals(
          "busy", probeExclusiveLock(ds.resolve(".lock")), "a PBS garbage collection cannot start");
      writeSome(s, snap);
      s.writeChunk(other, new byte[] {4});
    }
    assertEquals("free", probeExclusiveLock(ds.resolve(".lock")), "the lock is released on close");
    for (Path p :
        List.of(
            ds.resolve("ct"),
            ds.resolve("ct/7"),
            ds.resolve("ct/7/owner"),
            ds.resolve(snap.toString()),
            ds.resolve(snap + "/index.json.blob"),
            ds.resolve(".chunks/abab"),
            ds.resolve(".chunks/abab/" + other.hex()))) {
      assertEquals(PBS_UID, uid(p), p.toString());
      assertEquals(PBS_GID, gid(p), p.toString());
    }
    assertEquals("rwxr-x---", mode(ds.resolve(".chunks/abab")));
    assertEquals("rw-r--r--", mode(ds.resolve(".chunks/abab/" + other.hex())));
  }

  @Test
  void aRunningGarbageCollectionKeepsABackupOut() throws Exception {
    assumeTrue(hasPython(), "needs python3 for a lock held by another process");
    Path ds = root.resolve("gc");
    TestStores.openWritable(ds.toString()).close();
    Process gc =
        new ProcessBuilder(
                "python3",
                "-c",
                """
        import fcntl, sys
        f = open(sys.argv[1], 'r+')
        fcntl.lockf(f, fcntl.LOCK_EX)
        print('held', flush=True)
        sys.stdin.read()
        """,
                ds.resolve(".lock").toString())
            .redirectErrorStream(true)
            .start();
    try {
      assertEquals(
          "held",
          new java.io.BufferedReader(
                  new java.io.InputStreamReader(
                      gc.getInputStream(), java.nio.charset.StandardCharsets.UTF_8))
              .readLine());
      StoreException e =
          assertThrows(StoreException.class, () -> TestStores.openWritable(ds.toString()));
      assertTrue(e.getMessage().contains("garbage collection"), e.getMessage());
    } finally {
      gc.getOutputStream().close();
      gc.waitFor();
    }
    TestStores.openWritable(ds.toString()).close();
  }
}
