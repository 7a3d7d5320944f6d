package dev.thaw.files;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.volume.ByteSource;
import java.io.IOException;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The in-process ext2/3/4 reader on filesystems made by {@code mkfs.ext4 -d} here: extents,
 * indirect blocks (ext2), 64-bit and 32-bit descriptors, inline data, sparse files, fast and slow
 * symlinks, deep trees, large directories; and damaged images, which must end in a clear error,
 * never a loop.
 */
@Timeout(120)
class Ext4Test {
  static final Instant DATED = Instant.parse("2021-02-03T04:05:06Z");
  private static final PrintStream QUIET = new PrintStream(PrintStream.nullOutputStream());

  @TempDir Path dir;

  /**
   * The reference tree: random and text files, sparse, symlinks, a deep chain, a large directory.
   */
  private Path tree() throws IOException {
    Path t = dir.resolve("tree");
    Files.createDirectories(t.resolve("sub/deeper"));
    Files.writeString(t.resolve("hello.txt"), "hello from the backup\n");
    byte[] random = new byte[700_000]; // 1 KiB blocks: direct, single and double indirect
    new Random(7).nextBytes(random);
    Files.write(t.resolve("sub/random.bin"), random);
    Files.writeString(t.resolve("sub/deeper/deep.txt"), "deep\n");
    Files.writeString(t.resolve("run.sh"), "#!/bin/sh\n");
    Files.setPosixFilePermissions(
        t.resolve("run.sh"), PosixFilePermissions.fromString("rwxr-x---"));
    Files.writeString(t.resolve("sub/dated.txt"), "dated\n");
    Files.setLastModifiedTime(t.resolve("sub/dated.txt"), FileTime.from(DATED));
    try (RandomAccessFile f = new RandomAccessFile(t.resolve("sparse.bin").toFile(), "rw")) {
      f.setLength(5 << 20);
      f.seek(3 << 20);
      f.write("in the middle of holes".getBytes(java.nio.charset.StandardCharsets.UTF_8));
      f.seek((5 << 20) - 4); // (mkfs.ext4 -d with inline_data loses a trailing hole's length)
      f.write("end.".getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }
    Files.createSymbolicLink(t.resolve("fast-link"), Path.of("sub/deeper/deep.txt"));
    String longTarget = "sub/" + "x".repeat(80) + "/../deeper/deep.txt";
    Files.createSymbolicLink(t.resolve("slow-link"), Path.of(longTarget));
    Files.createSymbolicLink(t.resolve("dirlink"), Path.of("sub"));
    Path deep = t.resolve("chain");
    for (int i = 0; i < 40; i++) {
      deep = deep.resolve("d" + i);
    }
    Files.createDirectories(deep);
    Files.writeString(deep.resolve("bottom.txt"), "bottom\n");
    Path big = t.resolve("big");
    Files.createDirectories(big);
    for (int i = 0; i < 1500; i++) {
      Files.writeString(big.resolve("file-with-a-longish-name-" + i + ".txt"), Integer.toString(i));
    }
    return t;
  }

  private Path mkfs(Path t, String... opts) throws Exception {
    Mkfs.need("mkfs.ext4");
    Path img = dir.resolve("fs-" + String.join("", opts).replaceAll("[^a-z0-9]", "") + ".img");
    List<String> cmd =
        new java.util.ArrayList<>(List.of("mkfs.ext4", "-q", "-F", "-d", t.toString()));
    cmd.addAll(List.of(opts));
    cmd.addAll(List.of(img.toString(), "24M"));
    Mkfs.run(dir, List.of("E2FSPROGS_FAKE_TIME=1600000000"), cmd.toArray(new String[0]));
    return img;
  }

  private static FileSystemReader reader(Path img) throws IOException {
    FileSystemReader r = FileSystemReader.open(img);
    assertTrue(r instanceof TreeReader, "read in-process");
    return r;
  }

  /** Copies the whole tree out and compares it with the original, file by file. */
  private void copiesLikeTheOriginal(Path img, Path t) throws Exception {
    try (FileSystemReader r = reader(img)) {
      Path out = dir.resolve("out-" + img.getFileName());
      Files.createDirectories(out);
      Path made = r.copy("/", out);
      assertEquals(out.resolve(img.getFileName() + ".root"), made);
      List<String> want = Mkfs.walk(t);
      List<String> got = Mkfs.walk(made);
      got.remove("lost+found");
      assertEquals(want, got);
      for (String p : want) {
        Path a = t.resolve(p);
        Path b = made.resolve(p);
        if (Files.isSymbolicLink(a)) {
          assertEquals(Files.readSymbolicLink(a), Files.readSymbolicLink(b), p);
        } else if (Files.isRegularFile(a)) {
          assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b), p);
          assertEquals(Files.getPosixFilePermissions(a), Files.getPosixFilePermissions(b), p);
          assertEquals(
              Files.getLastModifiedTime(a).toMillis() / 1000,
              Files.getLastModifiedTime(b).toMillis() / 1000,
              p);
        }
      }
      Process stat =
          new ProcessBuilder("stat", "-c", "%b", made.resolve("sparse.bin").toString()).start();
      long blocks =
          Long.parseLong(
              new String(
                      stat.getInputStream().readAllBytes(),
                      java.nio.charset.StandardCharsets.US_ASCII)
                  .strip());
      assertTrue(blocks * 512 < 1 << 20, "holes stay holes: " + blocks + " blocks");
      assertEquals(
          "rwxr-x---",
          PosixFilePermissions.toString(Files.getPosixFilePermissions(made.resolve("run.sh"))));
    }
  }

  @Test
  void ext4WithExtentsAnd64BitDescriptorsCopiesLikeTheOriginal() throws Exception {
    Path t = tree();
    copiesLikeTheOriginal(mkfs(t, "-O", "64bit,metadata_csum", "-b", "4096"), t);
  }

  @Test
  void ext2WithIndirectBlocksAnd32BitDescriptorsCopiesLikeTheOriginal() throws Exception {
    Path t = tree();
    copiesLikeTheOriginal(mkfs(t, "-t", "ext2", "-O", "^64bit", "-b", "1024"), t);
  }

  @Test
  void inlineDataAndMetaBgCopyLikeTheOriginal() throws Exception {
    Path t = tree();
    copiesLikeTheOriginal(
        mkfs(t, "-O", "inline_data,meta_bg,^resize_inode", "-I", "512", "-b", "1024"), t);
  }

  @Test
  void listingsPathsThroughSymlinksAndClearErrors() throws Exception {
    Path t = tree();
    Path img = mkfs(t);
    try (FileSystemReader r = reader(img)) {
      List<Entry> sub = r.list("/sub");
      assertEquals(
          List.of("dated.txt", "deeper", "random.bin"), sub.stream().map(Entry::name).toList());
      Entry dated = sub.get(0);
      assertEquals(DATED, dated.modified());
      assertEquals(6, dated.size());
      assertEquals(0644, dated.mode());
      assertEquals(1500, r.list("/big").size());
      assertEquals(
          "deep.txt",
          r.list("/dirlink/deeper/deep.txt").get(0).name(),
          "a symlink inside a path is followed");
      assertEquals(
          Entry.Kind.SYMLINK, r.list("/dirlink").get(0).kind(), "the last component is not");
      FilesException missing = assertThrows(FilesException.class, () -> r.list("/sub/nope.txt"));
      assertTrue(
          missing
              .getMessage()
              .contains("no such file or directory in " + img.getFileName() + ": /sub/nope.txt"),
          missing.getMessage());
      assertTrue(
          assertThrows(FilesException.class, () -> r.list("../../etc"))
              .getMessage()
              .contains("path escapes the filesystem's root"));
      assertTrue(
          assertThrows(FilesException.class, () -> r.list("/hello.txt/x"))
              .getMessage()
              .contains("not a directory"));
      Path out = dir.resolve("o");
      Files.createDirectories(out);
      r.copy("/slow-link", out);
      assertEquals(
          Files.readSymbolicLink(t.resolve("slow-link")),
          Files.readSymbolicLink(out.resolve("slow-link")));
      r.copy("/chain/d0/d1", out);
      assertTrue(
          Files.isRegularFile(
              out.resolve("d1")
                  .resolve(
                      String.join(
                          "/",
                          java.util.stream.IntStream.range(2, 40).mapToObj(i -> "d" + i).toList()))
                  .resolve("bottom.txt")));
      assertTrue(
          assertThrows(
                  FilesException.class,
                  () -> r.copy("/hello.txt", out.resolve("d1").getParent().resolve("slow-link")))
              .getMessage()
              .contains("already exists, not overwritten"));
      assertTrue(
          Files.isSymbolicLink(out.resolve("slow-link")), "the existing target is left alone");
      assertTrue(!Files.exists(out.resolve("nope"), LinkOption.NOFOLLOW_LINKS));
    }
  }

  // ---- damaged images

  private static void le(byte[] b, int at, long v, int n) {
    for (int i = 0; i < n; i++) {
      b[at + i] = (byte) (v >>> (8 * i));
    }
  }

  private FilesException damagedError(byte[] img, String path, boolean copy) {
    return assertThrows(
        FilesException.class,
        () -> {
          Ext4 fs = Ext4.open(ByteSource.of(img), "ext4", "bad.img");
          try (TreeReader r = new TreeReader(fs, ByteSource.of(img), "bad.img", 4, QUIET, null)) {
            if (copy) {
              Path out = Files.createTempDirectory(dir, "bad");
              r.copy(path, out);
            } else {
              r.list(path);
            }
          }
        });
  }

  @Test
  void damagedStructuresEndInErrorsNamingThem() throws Exception {
    Path t = dir.resolve("small");
    Files.createDirectories(t.resolve("sub"));
    Files.writeString(t.resolve("sub/a.txt"), "a\n");
    byte[] good = Files.readAllBytes(mkfs(t, "-b", "1024", "-O", "^metadata_csum"));
    Ext4 fs = Ext4.open(ByteSource.of(good), "ext4", "good.img");
    FileTree.Node root = fs.root();
    long rootDir = fs.data(root).get(0).volumeOffset();
    FileTree.Named subEntry =
        fs.list(root).stream().filter(n -> n.name().equals("sub")).findFirst().orElseThrow();

    byte[] img = good.clone();
    le(img, 1024 + 24, 20, 4); // block size 2^30
    assertTrue(
        damagedError(img, "/", false).getMessage().contains("damaged ext4 filesystem: block size"));

    img = good.clone();
    le(img, 1024 + 40, 1L << 31, 4); // inodes per group
    assertTrue(damagedError(img, "/", false).getMessage().contains("impossible geometry"));

    img = good.clone();
    le(img, (int) rootDir + 12 + 4, 0, 2); // ".." with a record length of 0
    assertTrue(damagedError(img, "/", false).getMessage().contains("has an entry of length 0"));

    img = good.clone(); // "sub" names the root: a directory that contains itself
    int at =
        indexOf(img, (int) rootDir, "sub".getBytes(java.nio.charset.StandardCharsets.US_ASCII)) - 8;
    assertEquals(subEntry.number(), ((img[at] & 0xff) | (img[at + 1] & 0xff) << 8));
    le(img, at, Ext4.ROOT, 4);
    assertTrue(damagedError(img, "/", true).getMessage().contains("contains itself"));

    img = good.clone(); // the root's extent header says depth 6
    int rootInode = inodeOffset(good, fs);
    le(img, rootInode + 0x28 + 6, 6, 2);
    assertTrue(damagedError(img, "/", false).getMessage().contains("extent tree node of inode 2"));

    img = good.clone(); // an extent past the end of the filesystem
    le(img, rootInode + 0x28 + 12 + 8, 1L << 31, 4);
    assertTrue(damagedError(img, "/", false).getMessage().contains("past the filesystem's end"));
  }

  @Test
  void aDirectoryOfMoreEntriesThanThawListsIsRefused() throws Exception {
    // A regular file of 4 MiB holds packed 12-byte directory entries (341 a block, 349184 in
    // all); the directory "many" is then pointed at its blocks, as a hostile image could be.
    int block = 4096;
    int perBlock = block / 12;
    byte[] packed = new byte[4 << 20];
    for (int b = 0; b < packed.length / block; b++) {
      for (int e = 0; e < perBlock; e++) {
        int at = b * block + e * 12;
        le(packed, at, 11, 4);
        le(packed, at + 4, e == perBlock - 1 ? block - e * 12 : 12, 2);
        packed[at + 6] = 1;
        packed[at + 7] = 1;
        packed[at + 8] = 'x';
      }
    }
    Path t = dir.resolve("many-src");
    Files.createDirectories(t.resolve("many"));
    Files.write(t.resolve("entries"), packed);
    byte[] img = Files.readAllBytes(mkfs(t, "-b", "4096", "-O", "^metadata_csum,^inline_data"));
    Ext4 fs = Ext4.open(ByteSource.of(img), "ext4", "many.img");
    FileTree.Node entries = null;
    FileTree.Node many = null;
    for (FileTree.Named n : fs.list(fs.root())) {
      if (n.name().equals("entries")) {
        entries = fs.node(n);
      } else if (n.name().equals("many")) {
        many = fs.node(n);
      }
    }
    List<FileTree.Run> runs = fs.data(java.util.Objects.requireNonNull(entries));
    assertEquals(1, runs.size(), "the entries file lies in one extent");
    byte[] raw = (byte[]) java.util.Objects.requireNonNull(many).ref();
    int inode = indexOf(img, 0, raw);
    le(img, inode + 0x04, packed.length, 4); // i_size
    le(img, inode + 0x28 + 12 + 4, packed.length / block, 2); // the one extent's length
    le(img, inode + 0x28 + 12 + 6, 0, 2);
    le(img, inode + 0x28 + 12 + 8, runs.get(0).volumeOffset() / block, 4); // and start
    Ext4 hostile = Ext4.open(ByteSource.of(img), "ext4", "many.img");
    FileTree.Named m =
        hostile.list(hostile.root()).stream()
            .filter(n -> n.name().equals("many"))
            .findFirst()
            .orElseThrow();
    FilesException e = assertThrows(FilesException.class, () -> hostile.list(hostile.node(m)));
    assertTrue(
        e.getMessage()
            .startsWith(
                "many.img: directory inode "
                    + m.number()
                    + " holds more than "
                    + FileTree.MAX_ENTRIES
                    + " files and directories"),
        e.getMessage());
  }

  private static int indexOf(byte[] b, int from, byte[] what) {
    outer:
    for (int i = from; i < b.length - what.length; i++) {
      for (int k = 0; k < what.length; k++) {
        if (b[i + k] != what[k]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  /** Where inode 2 lies: found by its extent header, the first in the inode table after inode 1. */
  private static int inodeOffset(byte[] img, Ext4 fs) throws IOException {
    byte[] raw = (byte[]) fs.root().ref();
    for (int i = 0; i + raw.length <= img.length; i += 128) {
      if (java.util.Arrays.equals(img, i, i + raw.length, raw, 0, raw.length)) {
        return i;
      }
    }
    throw new AssertionError("inode 2 not found");
  }
}
