package dev.thaw.files;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.volume.ByteSource;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The in-process FAT reader on FAT12, FAT16 and FAT32 volumes made by {@code mkfs.vfat} and filled
 * by mtools: long names (non-ASCII, mixed case), short names, deep trees, multi-cluster files and
 * directories, times; and damaged volumes, which must end in a clear error.
 */
@Timeout(120)
class FatTest {
  static final Instant DATED = Instant.parse("2021-02-03T04:05:06Z");
  private static final PrintStream QUIET = new PrintStream(PrintStream.nullOutputStream());

  @TempDir Path dir;

  private Path tree() throws IOException {
    Path t = dir.resolve("tree");
    Files.createDirectories(t.resolve("Sub Dir/deeper"));
    Files.writeString(t.resolve("Grüße und Ümläute – ein langer Name.txt"), "long name\n");
    Files.writeString(t.resolve("UPPER.TXT"), "upper\n");
    Files.writeString(t.resolve("MixedCase.Txt"), "mixed\n");
    byte[] random = new byte[300_000];
    new Random(9).nextBytes(random);
    Files.write(t.resolve("Sub Dir/random.bin"), random);
    Files.writeString(t.resolve("Sub Dir/deeper/deep.txt"), "deep\n");
    Files.writeString(t.resolve("dated.txt"), "dated\n");
    Files.setLastModifiedTime(t.resolve("dated.txt"), FileTime.from(DATED));
    Path deep = t.resolve("chain");
    for (int i = 0; i < 20; i++) {
      deep = deep.resolve("level-" + i);
    }
    Files.createDirectories(deep);
    Files.writeString(deep.resolve("bottom.txt"), "bottom\n");
    Path many = t.resolve("many");
    Files.createDirectories(many);
    for (int i = 0; i < 300; i++) { // a directory of several clusters
      Files.writeString(many.resolve("entry number " + i + ".txt"), Integer.toString(i));
    }
    return t;
  }

  private Path mkfs(Path t, String size, String... opts) throws Exception {
    Mkfs.need("mkfs.vfat", "mcopy");
    Path img = dir.resolve("fat" + String.join("", opts).replaceAll("[^A-Za-z0-9]", "") + ".img");
    Mkfs.run(dir, List.of(), "truncate", "-s", size, img.toString());
    List<String> cmd = new java.util.ArrayList<>(List.of("mkfs.vfat"));
    cmd.addAll(List.of(opts));
    cmd.add(img.toString());
    Mkfs.run(dir, List.of(), cmd.toArray(new String[0]));
    List<String> copy =
        new java.util.ArrayList<>(List.of("mcopy", "-s", "-m", "-i", img.toString()));
    try (var s = Files.list(t)) {
      s.sorted().forEach(p -> copy.add(p.toString()));
    }
    copy.add("::/");
    Mkfs.run(
        dir,
        List.of("MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8", "TZ=UTC"),
        copy.toArray(new String[0]));
    return img;
  }

  private void copiesLikeTheOriginal(Path img, Path t) throws Exception {
    try (FileSystemReader r = FileSystemReader.open(img)) {
      assertTrue(r instanceof TreeReader, "read in-process");
      assertEquals("vfat", r.type());
      Path out = dir.resolve("out-" + img.getFileName());
      Files.createDirectories(out);
      Path made = r.copy("/", out);
      List<String> want = Mkfs.walk(t);
      assertEquals(want, Mkfs.walk(made));
      for (String p : want) {
        if (Files.isRegularFile(t.resolve(p))) {
          assertArrayEquals(
              Files.readAllBytes(t.resolve(p)), Files.readAllBytes(made.resolve(p)), p);
        }
      }
      assertEquals(DATED, Files.getLastModifiedTime(made.resolve("dated.txt")).toInstant());
      List<Entry> root = r.list("/");
      assertTrue(
          root.stream().anyMatch(e -> e.name().equals("UPPER.TXT") && e.size() == 6),
          root.toString());
      assertEquals(300, r.list("/many").size());
      assertEquals(-1, r.list("/dated.txt").get(0).uid(), "FAT has no owners");
    }
  }

  @Test
  void fat12CopiesLikeTheOriginal() throws Exception {
    Path t = tree();
    copiesLikeTheOriginal(mkfs(t, "3M", "-F", "12"), t);
  }

  @Test
  void fat16CopiesLikeTheOriginal() throws Exception {
    Path t = tree();
    copiesLikeTheOriginal(mkfs(t, "20M", "-F", "16"), t);
  }

  @Test
  void fat32CopiesLikeTheOriginal() throws Exception {
    Path t = tree();
    copiesLikeTheOriginal(mkfs(t, "64M", "-F", "32", "-s", "1"), t);
  }

  private static void le(byte[] b, int at, long v, int n) {
    for (int i = 0; i < n; i++) {
      b[at + i] = (byte) (v >>> (8 * i));
    }
  }

  private FilesException damagedError(byte[] img, String path) {
    return assertThrows(
        FilesException.class,
        () -> {
          Fat fs = Fat.open(ByteSource.of(img), "bad.img");
          try (TreeReader r = new TreeReader(fs, ByteSource.of(img), "bad.img", 4, QUIET, null)) {
            r.copy(path, Files.createTempDirectory(dir, "bad"));
          }
        });
  }

  @Test
  void damagedStructuresEndInErrorsNamingThem() throws Exception {
    Path t = dir.resolve("small");
    Files.createDirectories(t.resolve("sub"));
    byte[] data = new byte[20_000];
    new Random(3).nextBytes(data);
    Files.write(t.resolve("sub/data.bin"), data);
    byte[] good = Files.readAllBytes(mkfs(t, "20M", "-F", "16"));
    Fat fs = Fat.open(ByteSource.of(good), "good.img");
    FileTree.Named sub = fs.list(fs.root()).get(0);
    FileTree.Named file = fs.list(fs.node(sub)).get(0);
    assertEquals("data.bin", file.name());
    int reserved = (good[14] & 0xff) | (good[15] & 0xff) << 8;
    int fatAt = reserved * 512;

    byte[] img = good.clone();
    le(img, 11, 0, 2); // 0 bytes per sector
    assertTrue(
        assertThrows(FilesException.class, () -> Fat.open(ByteSource.of(img), "bad.img"))
            .getMessage()
            .contains("damaged FAT filesystem: impossible boot sector"));

    byte[] loop = good.clone(); // the file's first cluster points to itself
    le(loop, fatAt + 2 * (int) file.number(), file.number(), 2);
    assertTrue(
        damagedError(loop, "/sub/data.bin").getMessage().contains("its chain runs into itself"));

    byte[] out = good.clone(); // ... to a cluster past the data area
    le(out, fatAt + 2 * (int) file.number(), 0xfff0, 2);
    assertTrue(damagedError(out, "/sub/data.bin").getMessage().contains("outside the data area"));

    byte[] cycle =
        good.clone(); // "sub"'s entry for data.bin becomes a directory at sub's own cluster
    byte[] subDir = new byte[64 * 32];
    long subOff =
        fs.data(new FileTree.Node(0, Entry.Kind.FILE, 0, 0, 0, 512, null, null, sub.number()))
            .get(0)
            .volumeOffset();
    for (int at = (int) subOff; at < subOff + subDir.length; at += 32) {
      if ((cycle[at + 11] & 0x3f) != 0x0f && cycle[at] == 'D') { // DATA    BIN
        cycle[at + 11] = 0x10;
        le(cycle, at + 26, sub.number(), 2);
      }
    }
    assertTrue(damagedError(cycle, "/").getMessage().contains("contains itself"));
  }
}
