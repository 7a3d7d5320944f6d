package dev.thaw.files;

import static dev.thaw.files.ExFatImage.le;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.volume.ByteSource;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The in-process exFAT reader on volumes built here ({@link ExFatImage}, checked with {@code
 * fsck.exfat} where it is installed) and made by {@code mkfs.exfat}: chained, fragmented and
 * contiguous files, a file with bytes past its valid data length, a 255-unit name, deep and
 * multi-cluster directories, 512- and 4096-byte sectors, the second FAT, times with 10 ms and a UTC
 * offset, case-insensitive lookups; and damaged volumes, which must end in a clear error naming the
 * path, never a loop or a read outside the volume.
 */
@Timeout(120)
class ExFatTest {
  private static final PrintStream QUIET = new PrintStream(PrintStream.nullOutputStream());
  private static final Instant DATED = Instant.parse("2021-02-03T04:05:07.530Z");

  /**
   * 255 UTF-16 units, the most exFAT holds (and in ASCII, no more bytes than a Linux name may
   * have).
   */
  private static final String LONG_NAME =
      ("A long name from the archive " + "x".repeat(255)).substring(0, 251) + ".txt";

  private static final String UMLAUTS = "Grüße – Ümläute ✓.txt";

  @TempDir Path dir;

  private static byte[] random(int n, int seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  private static byte[] text(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  /**
   * The reference tree, in a 4 MiB volume of 2^sectorShift-byte sectors and 2^clusterShift-sector
   * clusters.
   */
  private static ExFatImage image(int sectorShift, int clusterShift) {
    ExFatImage x = new ExFatImage(4 << 20, sectorShift, clusterShift);
    ExFatImage.Item r = x.root;
    r.file("hello.txt", text("hello from exFAT\n"));
    ExFatImage.Item sub = r.dir("Sub Dir");
    sub.file("random.bin", random(300_000, 1)).layout = ExFatImage.Layout.FRAGMENTED;
    sub.file("contiguous.bin", random(100_000, 2)).layout = ExFatImage.Layout.CONTIGUOUS;
    ExFatImage.Item pre = sub.file("preallocated.bin", random(50_000, 3));
    pre.valid = 20_000;
    ExFatImage.Item deeper = sub.dir("deeper");
    deeper.layout = ExFatImage.Layout.CONTIGUOUS;
    deeper.spareClusters = 2;
    deeper.file("deep.txt", text("deep\n"));
    r.file("empty.txt", new byte[0]);
    r.file(LONG_NAME, text("long name\n"));
    r.file(UMLAUTS, text("umlauts\n"));
    r.file("read-only.txt", text("read only\n")).attributes = 0x01;
    ExFatImage.Item dated = r.file("dated.txt", text("dated\n"));
    dated.modified = DATED;
    dated.quarters = 8; // written as 06:05:07.53 at +02:00
    ExFatImage.Item local = r.file("local.txt", text("local\n"));
    local.quarters = null; // no offset: read as UTC
    r.file("gone.txt", text("deleted\n")).deleted = true;
    ExFatImage.Item many = r.dir("many");
    many.layout = ExFatImage.Layout.FRAGMENTED;
    for (int i = 0; i < 200; i++) {
      many.file("entry number " + i + ".txt", text(Integer.toString(i)));
    }
    ExFatImage.Item d = r.dir("chain");
    for (int i = 0; i < 30; i++) {
      d = d.dir("level-" + i);
    }
    d.file("bottom.txt", text("bottom\n"));
    return x;
  }

  private Path write(byte[] img, String name) throws IOException {
    Path p = dir.resolve(name);
    Files.write(p, img);
    return p;
  }

  private void copiesLikeTheOriginal(int sectorShift, int clusterShift) throws Exception {
    ExFatImage x = image(sectorShift, clusterShift);
    Path img = write(x.build(), "exfat" + sectorShift + "-" + clusterShift + ".img");
    try (FileSystemReader r = FileSystemReader.open(img)) {
      assertTrue(r instanceof TreeReader, "read in-process");
      assertEquals("exfat", r.type());
      Path out = dir.resolve("out-" + sectorShift);
      Files.createDirectories(out);
      Path made = r.copy("/", out);
      List<String> want =
          new ArrayList<>(
              List.of(
                  "",
                  "Sub Dir",
                  "Sub Dir/random.bin",
                  "Sub Dir/contiguous.bin",
                  "Sub Dir/preallocated.bin",
                  "Sub Dir/deeper",
                  "Sub Dir/deeper/deep.txt",
                  "hello.txt",
                  "empty.txt",
                  LONG_NAME,
                  UMLAUTS,
                  "read-only.txt",
                  "dated.txt",
                  "local.txt",
                  "many",
                  "chain"));
      String chain = "chain";
      for (int i = 0; i < 30; i++) {
        chain += "/level-" + i;
        want.add(chain);
      }
      want.add(chain + "/bottom.txt");
      for (int i = 0; i < 200; i++) {
        want.add("many/entry number " + i + ".txt");
      }
      want.sort(null);
      assertEquals(want, Mkfs.walk(made));
      assertArrayEquals(
          random(300_000, 1),
          Files.readAllBytes(made.resolve("Sub Dir/random.bin")),
          "fragmented chain");
      assertArrayEquals(
          random(100_000, 2),
          Files.readAllBytes(made.resolve("Sub Dir/contiguous.bin")),
          "NoFatChain");
      byte[] pre = Arrays.copyOf(random(50_000, 3), 50_000);
      Arrays.fill(pre, 20_000, 50_000, (byte) 0);
      assertArrayEquals(
          pre,
          Files.readAllBytes(made.resolve("Sub Dir/preallocated.bin")),
          "zeros past the valid data length");
      assertEquals("deep\n", Files.readString(made.resolve("Sub Dir/deeper/deep.txt")));
      assertEquals("long name\n", Files.readString(made.resolve(LONG_NAME)));
      assertEquals("umlauts\n", Files.readString(made.resolve(UMLAUTS)));
      assertEquals("bottom\n", Files.readString(made.resolve(chain + "/bottom.txt")));
      assertEquals("137", Files.readString(made.resolve("many/entry number 137.txt")));
      assertEquals(0, Files.size(made.resolve("empty.txt")));
      assertEquals(
          DATED,
          Files.getLastModifiedTime(made.resolve("dated.txt")).toInstant(),
          "10 ms and UTC offset");
      assertEquals(
          ExFatImage.STAMP, Files.getLastModifiedTime(made.resolve("local.txt")).toInstant());
      assertEquals(
          ExFatImage.STAMP, Files.getLastModifiedTime(made.resolve("Sub Dir")).toInstant());
      assertEquals(
          0444, (int) Files.getAttribute(made.resolve("read-only.txt"), "unix:mode") & 0777);
      assertEquals(0644, (int) Files.getAttribute(made.resolve("hello.txt"), "unix:mode") & 0777);
      assertEquals(0755, (int) Files.getAttribute(made.resolve("many"), "unix:mode") & 0777);

      List<Entry> sub = r.list("/Sub Dir");
      assertEquals(
          List.of("contiguous.bin", "deeper", "preallocated.bin", "random.bin"),
          sub.stream().map(Entry::name).toList());
      Entry p = sub.get(2);
      assertEquals(50_000, p.size(), "the data length, not the valid one");
      assertEquals(-1, p.uid(), "exFAT has no owners");
      assertEquals(Entry.Kind.DIRECTORY, sub.get(1).kind());
      assertEquals(200, r.list("/many").size());
      assertFalse(
          r.list("/").stream().anyMatch(e -> e.name().equals("gone.txt")),
          "a deleted set is skipped");
    }
  }

  @Test
  void smallSectorsAndClustersCopyLikeTheOriginal() throws Exception {
    copiesLikeTheOriginal(9, 1);
  }

  @Test
  void fourKibSectorsCopyLikeTheOriginal() throws Exception {
    copiesLikeTheOriginal(12, 0);
  }

  @Test
  void theBuiltVolumesAreValidExfat() throws Exception {
    Mkfs.need("fsck.exfat");
    Mkfs.run(dir, List.of(), "fsck.exfat", "-n", write(image(9, 1).build(), "a.img").toString());
    Mkfs.run(dir, List.of(), "fsck.exfat", "-n", write(image(12, 0).build(), "b.img").toString());
  }

  @Test
  void readsAnEmptyVolumeMadeByMkfsExfat() throws Exception {
    Mkfs.need("mkfs.exfat");
    Path img = dir.resolve("mkfs.img");
    Mkfs.run(dir, List.of(), "truncate", "-s", "8M", img.toString());
    Mkfs.run(dir, List.of(), "mkfs.exfat", "-L", "label", img.toString());
    try (FileSystemReader r = FileSystemReader.open(img)) {
      assertEquals("exfat", r.type());
      assertEquals(List.of(), r.list("/"), "the bitmap, up-case table and label are no files");
    }
  }

  @Test
  void namesAreLookedUpWithoutRegardToCase() throws Exception {
    ExFatImage x = new ExFatImage(2 << 20, 9, 0);
    ExFatImage.Item sub = x.root.dir("Sub Dir");
    sub.file("Random.bin", text("random\n"));
    sub.file("README.TXT", text("upper\n"));
    sub.file("Readme.txt", text("mixed case\n"));
    sub.file("straße.txt", text("sharp s\n"));
    sub.file("ÄÖÜ.txt", text("umlauts\n"));
    byte[] img = x.build();
    try (TreeReader r = reader(img)) {
      assertEquals(7, r.list("/SUB DIR/random.BIN").get(0).size());
      assertEquals(8, r.list("/sub dir/äöü.TXT").get(0).size(), "non-ASCII letters too");
      assertEquals(6, r.list("/Sub Dir/README.TXT").get(0).size(), "the exact name first");
      assertEquals(11, r.list("/Sub Dir/Readme.txt").get(0).size());
      assertEquals(8, r.list("/Sub Dir/STRAßE.TXT").get(0).size());
      assertTrue(
          assertThrows(FilesException.class, () -> r.list("/Sub Dir/STRASSE.TXT"))
              .getMessage()
              .contains("no such file or directory"),
          "one UTF-16 unit to one, as exFAT's up-case table maps");
      Path out = dir.resolve("case");
      Files.createDirectories(out);
      r.copy("/sub dir/readme.TXT", out);
      assertTrue(Files.exists(out.resolve("readme.TXT")), "copied under the name asked for");
    }
  }

  @Test
  void theActiveFatIsRead() throws Exception {
    ExFatImage x = new ExFatImage(4 << 20, 9, 0);
    x.fats = 2;
    x.activeFat = 1; // the first FAT holds garbage
    x.root.file("data.bin", random(20_000, 4));
    byte[] img = x.build();
    Path out = dir.resolve("active");
    Files.createDirectories(out);
    try (TreeReader r = reader(img)) {
      r.copy("/data.bin", out);
    }
    assertArrayEquals(random(20_000, 4), Files.readAllBytes(out.resolve("data.bin")));
    img[106] = 0; // the flags are outside the boot checksum
    assertTrue(damaged(img, "/data.bin").getMessage().contains("outside the data area"));
  }

  @Test
  void entriesOfLaterRevisionsAreSkippedOrRefused() throws Exception {
    ExFatImage x = new ExFatImage(2 << 20, 9, 0);
    x.root.file("vendor.txt", text("benign extension\n")).extra = new int[] {0xe0, 0xe1};
    x.root.file("later.txt", text("a critical secondary entry this reader does not know\n")).extra =
        new int[] {0xc2};
    ExFatImage.Item later = x.root.dir("later-dir");
    later.extra = new int[] {0xc2};
    later.file("inside.txt", text("inside\n"));
    byte[] img = x.build();
    java.io.ByteArrayOutputStream notes = new java.io.ByteArrayOutputStream();
    FileTree t = ExFat.open(ByteSource.of(img), "x.img");
    try (TreeReader r =
        new TreeReader(
            t,
            ByteSource.of(img),
            "x.img",
            2,
            new PrintStream(notes, true, StandardCharsets.UTF_8),
            null)) {
      Path out = dir.resolve("later");
      Files.createDirectories(out);
      Path made = r.copy("/", out);
      assertEquals(List.of("", "later-dir", "later-dir/inside.txt", "vendor.txt"), Mkfs.walk(made));
      assertEquals("benign extension\n", Files.readString(made.resolve("vendor.txt")));
      assertTrue(
          notes.toString(StandardCharsets.UTF_8).contains("skipped /later.txt: not a regular file"),
          notes.toString(StandardCharsets.UTF_8));
      assertEquals(Entry.Kind.OTHER, r.list("/later.txt").get(0).kind());
    }
  }

  @Test
  void aNameNoFileCanHaveIsSkippedInACopiedTree() throws Exception {
    ExFatImage x = new ExFatImage(2 << 20, 9, 0);
    x.root.file("lone \ud800 surrogate.txt", text("unnameable\n"));
    x.root.file("fine.txt", text("fine\n"));
    byte[] img = x.build();
    java.io.ByteArrayOutputStream notes = new java.io.ByteArrayOutputStream();
    try (TreeReader r =
        new TreeReader(
            ExFat.open(ByteSource.of(img), "x.img"),
            ByteSource.of(img),
            "x.img",
            2,
            new PrintStream(notes, true, StandardCharsets.UTF_8),
            null)) {
      assertEquals(2, r.list("/").size(), "listed as it is");
      Path out = dir.resolve("lone");
      Files.createDirectories(out);
      Path made = r.copy("/", out);
      assertEquals(List.of("", "fine.txt"), Mkfs.walk(made));
      assertTrue(
          notes
              .toString(StandardCharsets.UTF_8)
              .contains("skipped an entry of / whose name no file can have"),
          notes.toString(StandardCharsets.UTF_8));
    }
  }

  private static TreeReader reader(byte[] img) throws IOException {
    return new TreeReader(
        ExFat.open(ByteSource.of(img), "x.img"), ByteSource.of(img), "x.img", 4, QUIET, null);
  }

  private FilesException damaged(byte[] img, String path) {
    return assertThrows(
        FilesException.class,
        () -> {
          try (TreeReader r = reader(img)) {
            r.copy(path, Files.createTempDirectory(dir, "bad"));
          }
        });
  }

  private static FilesException badBoot(byte[] img) {
    return assertThrows(FilesException.class, () -> ExFat.open(ByteSource.of(img), "x.img"));
  }

  private static void contains(FilesException e, String... parts) {
    for (String p : parts) {
      assertTrue(e.getMessage().contains(p), "'" + e.getMessage() + "' lacks '" + p + "'");
    }
  }

  /**
   * A small volume: /sub/data.bin (5 clusters in a chain), /sub/flat.bin (contiguous), /sub/inner/.
   */
  private static final class Small {
    final ExFatImage x = new ExFatImage(4 << 20, 9, 1);
    final ExFatImage.Item sub = x.root.dir("sub");
    final ExFatImage.Item data = sub.file("data.bin", random(5000, 5));
    final ExFatImage.Item flat = sub.file("flat.bin", random(3000, 6));
    final ExFatImage.Item inner = sub.dir("inner");
    final byte[] good;

    Small() {
      sub.spareClusters = 1; // a chain of two
      flat.layout = ExFatImage.Layout.CONTIGUOUS;
      inner.file("x.txt", text("x"));
      good = x.build();
    }

    byte[] copy() {
      return good.clone();
    }

    /**
     * {@code v} into bytes {@code at..} of {@code item}'s set, the set checksum made right again.
     */
    byte[] set(ExFatImage.Item item, int at, long v, int n) {
      byte[] b = copy();
      le(b, (int) item.setAt + at, v, n);
      ExFatImage.resum(b, item);
      return b;
    }
  }

  /**
   * {@code v} into bytes {@code at..at+n} of the boot sector, checksum made right: refused with
   * {@code message}.
   */
  private static void bootField(Small s, int at, long v, int n, String message) {
    byte[] b = s.copy();
    le(b, at, v, n);
    s.x.rechecksum(b);
    contains(badBoot(b), message);
  }

  @Test
  void damagedBootRegionsAreRefused() throws Exception {
    Small s = new Small();
    ExFatImage x = s.x;
    ExFat.open(ByteSource.of(s.good), "x.img");

    byte[] b = s.copy();
    b[512 + 7] ^= 1; // an extended boot sector
    contains(badBoot(b), "x.img: damaged exFAT filesystem: the boot checksum in sector 11");
    b = s.copy();
    b[106] = 2; // VolumeDirty: outside the checksum
    b[112] = 42;
    ExFat.open(ByteSource.of(b), "x.img");
    b = s.copy();
    b[510] = 0;
    contains(badBoot(b), "signature");
    b = s.copy();
    b[3] = 'N';
    contains(badBoot(b), "not an exFAT filesystem");
    bootField(s, 20, 1, 1, "byte 20 of the boot sector is not zero");
    bootField(s, 108, 13, 1, "impossible boot sector (sectors of 2^13 bytes");
    bootField(s, 109, 17, 1, "impossible boot sector"); // 64 MiB clusters
    bootField(s, 105, 2, 1, "revision 2.0");
    bootField(s, 92, 0x100000, 4, "impossible layout"); // cluster count
    bootField(s, 88, 3, 4, "impossible layout"); // heap offset
    bootField(s, 80, 4, 4, "impossible layout"); // FAT offset
    bootField(s, 84, 1, 4, "impossible layout"); // FAT length
    bootField(s, 72, 1L << 40, 8, "sectors of 512 bytes in a " + (4 << 20) + "-byte volume");
    bootField(s, 96, x.clusterCount + 2, 4, "the root directory's cluster");
    bootField(s, 110, 3, 1, "3 FATs");
    b = s.copy();
    b[106] = 1; // the second FAT active, of one
    contains(badBoot(b), "1 FATs, FAT 1 active");
    contains(badBoot(Arrays.copyOf(s.good, 4096)), "the volume ends inside its boot region");
  }

  @Test
  void damagedChainsEndInErrorsNamingThePath() throws Exception {
    Small s = new Small();
    long first = s.data.cluster;

    byte[] b = s.copy(); // the third cluster points back to the first
    le(b, (int) s.x.fatEntry(first + 2), first, 4);
    contains(
        damaged(b, "/sub/data.bin"),
        "/sub/data.bin: its chain runs into itself at cluster " + first);
    b = s.copy();
    le(b, (int) s.x.fatEntry(first), s.x.clusterCount + 9, 4);
    contains(
        damaged(b, "/sub/data.bin"),
        "/sub/data.bin: cluster "
            + (s.x.clusterCount + 9)
            + " in its chain is outside the data area");
    b = s.copy();
    le(b, (int) s.x.fatEntry(first), 0xffffffffL, 4);
    contains(damaged(b, "/sub/data.bin"), "the chain ends before its size");
    b = s.copy();
    le(b, (int) s.x.fatEntry(first), 0xfffffff7L, 4); // a bad cluster
    contains(damaged(b, "/sub/data.bin"), "outside the data area");
    b = s.copy(); // the root directory's chain loops on itself
    le(b, (int) s.x.fatEntry(s.x.root.cluster), s.x.root.cluster, 4);
    contains(damaged(b, "/"), "x.img: damaged exFAT filesystem: /: its chain runs into itself");
    b = s.copy(); // so does /sub's
    le(b, (int) s.x.fatEntry(s.sub.cluster), s.sub.cluster, 4);
    contains(damaged(b, "/sub"), "/sub: its chain runs into itself");

    b = s.set(s.flat, 32 + 20, s.x.clusterCount, 4); // contiguous past the heap's end
    contains(
        damaged(b, "/sub/flat.bin"),
        "/sub/flat.bin: its 3 clusters from cluster "
            + s.x.clusterCount
            + " are outside the cluster heap");
    b = s.set(s.data, 32 + 8, 6000, 8); // valid data length past the data length
    contains(damaged(b, "/sub/data.bin"), "/sub/data.bin: 6000 valid bytes of 5000");
    b = s.set(s.data, 32 + 8, 0, 8);
    le(b, (int) s.data.setAt + 32 + 24, -1L, 8);
    ExFatImage.resum(b, s.data);
    contains(
        damaged(b, "/sub/data.bin"),
        "/sub/data.bin: a size of " + Long.MAX_VALUE + " bytes, more than");
    b = s.set(s.data, 32 + 20, 0, 4);
    contains(damaged(b, "/sub/data.bin"), "/sub/data.bin: 5000 bytes without a cluster");
    b = s.set(s.sub, 32 + 24, 512L << 20, 8);
    contains(damaged(b, "/sub"), "/sub: a directory of 536870912 bytes");
  }

  @Test
  void damagedEntrySetsEndInErrorsNamingTheDirectory() throws Exception {
    Small s = new Small();
    byte[] b = s.copy();
    b[(int) s.data.setAt + 64 + 2] ^= 1; // a name character, the checksum left as it was
    contains(
        damaged(b, "/sub"),
        "x.img: damaged exFAT filesystem: /sub: the entry set at entry 0 has checksum");
    contains(damaged(b, "/sub/flat.bin"), "/sub: the entry set at entry 0 has checksum");
    b = s.set(s.data, 1, 1, 1);
    contains(damaged(b, "/sub"), "/sub: the entry set at entry 0 has 1 secondary entries");
    b = s.set(s.data, 1, 19, 1);
    contains(damaged(b, "/sub"), "has 19 secondary entries");
    b = s.set(s.data, 32 + 3, 0, 1);
    contains(damaged(b, "/sub"), "has an empty name");
    b = s.set(s.data, 32 + 3, 16, 1); // two name entries, one there
    contains(damaged(b, "/sub"), "has a name of 16 units, more than its 1 name entries hold");
    b = s.set(s.data, 32, 0xc2, 1);
    contains(damaged(b, "/sub"), "has no stream extension");
    b = s.set(s.data, 64, 0xc2, 1);
    contains(damaged(b, "/sub"), "lacks part 1 of its name");
    b = s.copy(); // a critical primary entry that 1.00 does not define, after the sets
    b[(int) s.inner.setAt + 96] = (byte) 0x86;
    contains(
        damaged(b, "/sub"),
        "/sub: entry 9 has type 86, a critical entry exFAT 1.00 does not define");
    b = s.copy(); // the last set's secondaries run past the directory's end (unused entries
    // before it)
    int at = (int) s.inner.setAt + 96;
    for (; at < s.x.heap(s.sub.cluster) + s.x.clusterSize; at += 32) {
      b[at] = 0x05;
    }
    for (at = (int) s.x.heap(s.sub.cluster + 1);
        at < s.x.heap(s.sub.cluster + 1) + s.x.clusterSize - 32;
        at += 32) {
      b[at] = 0x05;
    }
    b[at] = (byte) 0x85;
    b[at + 1] = 2;
    contains(damaged(b, "/sub"), "runs past the directory's end");

    b = s.copy(); // data.bin becomes a directory at /sub's own cluster
    le(b, (int) s.data.setAt + 4, 0x10, 2);
    le(b, (int) s.data.setAt + 32 + 20, s.sub.cluster, 4);
    le(b, (int) s.data.setAt + 32 + 24, s.sub.clusters * s.x.clusterSize, 8);
    le(b, (int) s.data.setAt + 32 + 8, s.sub.clusters * s.x.clusterSize, 8);
    ExFatImage.resum(b, s.data);
    contains(
        damaged(b, "/"), "x.img: damaged filesystem: the directory /sub/data.bin contains itself");
  }

  @Test
  void aDirectoryOfMoreEntriesThanThawListsIsRefused() throws Exception {
    ExFatImage x = new ExFatImage(40 << 20, 9, 3);
    ExFatImage.Item big = x.root.dir("big");
    for (int i = 0; i <= ExFat.MAX_ENTRIES; i++) {
      big.file("f" + i, new byte[0]);
    }
    x.root.file("small.txt", text("small\n"));
    byte[] img = x.build();
    try (TreeReader r = reader(img)) {
      assertEquals(List.of("big", "small.txt"), r.list("/").stream().map(Entry::name).toList());
      contains(
          assertThrows(FilesException.class, () -> r.list("/big")),
          "x.img: /big holds more than " + ExFat.MAX_ENTRIES + " files and directories");
    }
  }

  @Test
  void hostileBytesEndInErrorsNeverLoopsCrashesOrReadsOutside() throws Exception {
    Small s = new Small();
    List<long[]> ranges = new ArrayList<>(); // [from, to) of the volume's metadata
    ranges.add(new long[] {64, 113});
    ranges.add(new long[] {s.x.fatEntry(0), s.x.fatEntry(s.x.clusterCount + 2)});
    for (ExFatImage.Item d : List.of(s.x.root, s.sub, s.inner)) {
      ranges.add(new long[] {s.x.heap(d.cluster), s.x.heap(d.cluster) + 256});
    }
    List<ExFatImage.Item> items = List.of(s.sub, s.data, s.flat, s.inner, s.inner.children.get(0));
    Random rnd = new Random(11);
    int failures = 0;
    for (int round = 0; round < 300; round++) {
      byte[] b = s.copy();
      for (int k = 1 + rnd.nextInt(6); k > 0; k--) {
        long[] r = ranges.get(rnd.nextInt(ranges.size()));
        int at = (int) (r[0] + rnd.nextInt((int) (r[1] - r[0])));
        b[at] = (byte) (rnd.nextInt(4) == 0 ? 0xff : rnd.nextInt(256));
      }
      s.x.rechecksum(b);
      for (ExFatImage.Item i : items) {
        ExFatImage.resum(b, i);
      }
      AtomicReference<String> outside = new AtomicReference<>();
      ByteSource src = guarded(b, outside);
      try {
        FileTree t = ExFat.open(src, "x.img");
        try (TreeReader r = new TreeReader(t, src, "x.img", 2, QUIET, null)) {
          r.list("/");
          r.copy("/", Files.createTempDirectory(dir, "fuzz"));
        }
      } catch (IOException e) {
        failures++;
      } catch (RuntimeException e) {
        throw new AssertionError("round " + round + ": " + e, e);
      }
      assertEquals(null, outside.get(), "round " + round + " read outside the volume");
    }
    assertTrue(failures > 100, failures + " of 300 damaged volumes refused");
  }

  /** A source over {@code b} that notes a read outside it. */
  private static ByteSource guarded(byte[] b, AtomicReference<String> outside) {
    ByteSource inner = ByteSource.of(b);
    return new ByteSource() {
      @Override
      public long size() {
        return b.length;
      }

      @Override
      public void read(long offset, byte[] dst, int off, int len) throws IOException {
        if (offset < 0 || len < 0 || offset + len > b.length) {
          outside.compareAndSet(null, len + " bytes at " + offset);
        }
        inner.read(offset, dst, off, len);
      }
    };
  }
}
