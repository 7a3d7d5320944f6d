package dev.thaw.volume;

import static dev.thaw.volume.TestImages.SECTOR;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.volume.TestImages.GptPart;
import dev.thaw.volume.TestImages.Lv;
import dev.thaw.volume.TestImages.Seg;
import dev.thaw.volume.TestImages.Slot;
import java.io.IOException;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

class VolumeMapTest {
  private static final long MIB = 1 << 20;

  private static String names(VolumeMap m) {
    return m.volumes().stream()
        .map(v -> v.name() + (v.exposed() ? "" : "!"))
        .collect(Collectors.joining(" "));
  }

  private static void assertRejected(VolumeMap m, String warning) {
    assertTrue(m.volumes().isEmpty(), "volumes of a rejected table: " + names(m));
    assertTrue(
        m.warnings().stream().anyMatch(w -> w.contains(warning)),
        "warnings " + m.warnings() + " lack " + warning);
  }

  // ---- MBR

  /** p1 primary, p2 extended with three logical partitions in a chain of EBRs, p3 FAT. */
  static byte[] mbrWithLogicals() {
    byte[] img = new byte[(int) (16 * MIB)];
    TestImages.mbr(
        img,
        0,
        new Slot(0x83, 2048, 4096),
        new Slot(0x05, 6144, 20480),
        new Slot(0x0c, 26624, 4096));
    // EBR 1 at 6144: logical at +2048 (8192), link to the next EBR at extended+6144 (12288)
    TestImages.mbr(img, 6144, new Slot(0x83, 2048, 2048), new Slot(0x05, 6144, 4096));
    TestImages.mbr(img, 12288, new Slot(0x82, 1024, 2048), new Slot(0x05, 10240, 4096));
    TestImages.mbr(img, 16384, new Slot(0x8e, 2048, 4096));
    return img;
  }

  @Test
  void mbrPrimaryExtendedAndLogicalPartitions() throws IOException {
    VolumeMap m = VolumeMap.scan("d.img", ByteSource.of(mbrWithLogicals()));
    assertEquals("mbr", m.table());
    assertEquals("d.img.p1 d.img.p2! d.img.p3 d.img.p5 d.img.p6 d.img.p7", names(m));
    assertEquals(List.of(), m.warnings());
    Volume p2 = m.find("d.img.p2").orElseThrow();
    assertTrue(p2.notExposed().contains("extended"));
    assertEquals("0x05", p2.typeId());
    Volume p5 = m.find("d.img.p5").orElseThrow();
    assertEquals(List.of(new Extent(8192 * SECTOR, 2048 * SECTOR)), p5.extents());
    assertEquals("Linux", p5.type());
    Volume p6 = m.find("d.img.p6").orElseThrow();
    assertEquals(13312L * SECTOR, p6.offset());
    assertEquals("Linux swap / Solaris", p6.type());
    Volume p7 = m.find("d.img.p7").orElseThrow();
    assertEquals(18432L * SECTOR, p7.offset());
    assertEquals(4096L * SECTOR, p7.size());
    assertEquals("0x8e", p7.typeId());
    assertEquals("W95 FAT32 (LBA)", m.find("d.img.p3").orElseThrow().type());
  }

  @Test
  void ebrChainThatLoopsIsRejected() throws IOException {
    byte[] img = mbrWithLogicals();
    TestImages.mbr(
        img, 16384, new Slot(0x8e, 2048, 1024), new Slot(0x05, 0 + 6144, 1)); // back to EBR 2
    assertRejected(VolumeMap.scan("d.img", ByteSource.of(img)), "loops");
  }

  @Test
  void partitionPastTheEndIsRejected() throws IOException {
    byte[] img = new byte[(int) (4 * MIB)];
    TestImages.mbr(img, 0, new Slot(0x83, 2048, 4096), new Slot(0x83, 6144, 100_000));
    assertRejected(VolumeMap.scan("d.img", ByteSource.of(img)), "outside the image");
  }

  @Test
  void overlappingPartitionsAreRejected() throws IOException {
    byte[] img = new byte[(int) (4 * MIB)];
    TestImages.mbr(img, 0, new Slot(0x83, 2048, 2048), new Slot(0x83, 4000, 1000));
    assertRejected(VolumeMap.scan("d.img", ByteSource.of(img)), "overlap");
  }

  @Test
  void logicalPartitionOutsideItsExtendedPartitionIsRejected() throws IOException {
    byte[] img = mbrWithLogicals();
    TestImages.mbr(img, 12288, new Slot(0x82, 1024, 200_000));
    assertRejected(VolumeMap.scan("d.img", ByteSource.of(img)), "extended partition");
  }

  @Test
  void noTableNoVolumes() throws IOException {
    VolumeMap m = VolumeMap.scan("d.img", ByteSource.of(new byte[(int) MIB]));
    assertEquals("none", m.table());
    assertTrue(m.volumes().isEmpty());
    assertTrue(m.warnings().isEmpty());
    assertTrue(VolumeMap.scan("tiny.img", ByteSource.of(new byte[100])).volumes().isEmpty());
  }

  @Test
  void aFatBootSectorIsNotAPartitionTable() throws IOException {
    byte[] img = new byte[(int) MIB];
    TestImages.mbr(img, 0, new Slot(0x83, 2048, 4096)); // would be past the end if it were a table
    TestImages.ascii(img, 82, "FAT32   ");
    VolumeMap m = VolumeMap.scan("d.img", ByteSource.of(img));
    assertEquals("none", m.table());
    assertEquals("vfat", m.filesystem());
    assertTrue(m.warnings().isEmpty(), m.warnings().toString());
  }

  // ---- GPT

  static byte[] gpt() {
    return TestImages.gpt(
        8,
        new GptPart(TestImages.BIOS_BOOT, "00000000-0000-0000-0000-000000000001", 34, 2047, "bios"),
        new GptPart(
            TestImages.EFI, "00000000-0000-0000-0000-000000000002", 2048, 4095, "EFI system"),
        new GptPart(
            TestImages.LINUX, "00000000-0000-0000-0000-000000000003", 4096, 10239, "root fs ü"),
        new GptPart(TestImages.SWAP, "00000000-0000-0000-0000-000000000004", 10240, 12287, ""),
        new GptPart(TestImages.LVM, "00000000-0000-0000-0000-000000000005", 12288, 14335, "pv"),
        new GptPart(
            TestImages.BASIC_DATA, "00000000-0000-0000-0000-000000000006", 14336, 16000, "data"));
  }

  private static void assertGptVolumes(VolumeMap m) {
    assertEquals("gpt", m.table());
    assertEquals("d.img.p1 d.img.p2 d.img.p3 d.img.p4 d.img.p5 d.img.p6", names(m));
    List<String> types = m.volumes().stream().map(Volume::type).toList();
    assertEquals(
        List.of(
            "BIOS boot",
            "EFI System",
            "Linux filesystem",
            "Linux swap",
            "Linux LVM",
            "Microsoft basic data"),
        types);
    Volume root = m.volumes().get(2);
    assertEquals("root fs ü", root.label());
    assertEquals(TestImages.LINUX, root.typeId());
    assertEquals("00000000-0000-0000-0000-000000000003", root.uuid());
    assertEquals(List.of(new Extent(4096L * SECTOR, 6144L * SECTOR)), root.extents());
    assertEquals((16000 - 14336 + 1) * 512L, m.volumes().get(5).size());
  }

  @Test
  void gptPartitionsTypesAndNames() throws IOException {
    VolumeMap m = VolumeMap.scan("d.img", ByteSource.of(gpt()));
    assertGptVolumes(m);
    assertEquals(List.of(), m.warnings());
  }

  @Test
  void damagedPrimaryHeaderFallsBackToTheBackup() throws IOException {
    byte[] img = gpt();
    img[SECTOR + 40] ^= 1; // first usable LBA changes: the header CRC no longer matches
    VolumeMap m = VolumeMap.scan("d.img", ByteSource.of(img));
    assertGptVolumes(m);
    assertEquals(1, m.warnings().size(), m.warnings().toString());
    assertTrue(
        m.warnings().get(0).contains("primary GPT header is damaged (header CRC mismatch)"),
        m.warnings().get(0));
  }

  @Test
  void damagedPrimaryEntryArrayFallsBackToTheBackup() throws IOException {
    byte[] img = gpt();
    img[2 * SECTOR + 2 * 128 + 56] ^=
        0x20; // a name in the primary array: its CRC no longer matches
    VolumeMap m = VolumeMap.scan("d.img", ByteSource.of(img));
    assertGptVolumes(m);
    assertTrue(m.warnings().get(0).contains("entry array CRC mismatch"), m.warnings().get(0));
  }

  @Test
  void damagedBackupIsReportedAndThePrimaryUsed() throws IOException {
    byte[] img = gpt();
    img[img.length - SECTOR] = 'X';
    VolumeMap m = VolumeMap.scan("d.img", ByteSource.of(img));
    assertGptVolumes(m);
    assertTrue(m.warnings().get(0).contains("backup GPT header"), m.warnings().get(0));
  }

  @Test
  void bothHeadersDamagedGiveNoVolumes() throws IOException {
    byte[] img = gpt();
    img[SECTOR + 40] ^= 1;
    img[img.length - SECTOR + 40] ^= 1;
    assertRejected(VolumeMap.scan("d.img", ByteSource.of(img)), "both GPT headers are damaged");
  }

  @Test
  void absurdEntryCountIsRejectedWithoutReadingIt() throws IOException {
    byte[] img = gpt();
    for (long lba : new long[] {1, img.length / SECTOR - 1}) {
      TestImages.le(img, (int) (lba * SECTOR) + 80, 0x7fffffff, 4);
      TestImages.resealHeader(img, lba);
    }
    CountingSource src = new CountingSource(ByteSource.of(img));
    assertRejected(VolumeMap.scan("d.img", src), "entries of 128 bytes");
    assertTrue(src.largest <= 64 * 1024, "largest read " + src.largest);
  }

  @Test
  void gptPartitionOutsideTheUsableAreaIsRejected() throws IOException {
    byte[] img =
        TestImages.gpt(
            8,
            new GptPart(
                TestImages.LINUX, "00000000-0000-0000-0000-000000000003", 4096, 1 << 20, "big"));
    assertRejected(VolumeMap.scan("d.img", ByteSource.of(img)), "outside the usable LBAs");
  }

  @Test
  void overlappingGptPartitionsAreRejected() throws IOException {
    byte[] img =
        TestImages.gpt(
            8,
            new GptPart(TestImages.LINUX, "00000000-0000-0000-0000-000000000001", 4096, 8191, "a"),
            new GptPart(TestImages.LINUX, "00000000-0000-0000-0000-000000000002", 8000, 9000, "b"));
    assertRejected(VolumeMap.scan("d.img", ByteSource.of(img)), "GPT partitions overlap");
  }

  // ---- LVM2

  static final long PV_AT = MIB;

  /**
   * An MBR image with p1 = a PV (1 MiB extents from 1 MiB into the PV); PE k is filled with k + 1.
   */
  static byte[] lvmImage(String text, int textOffset) {
    byte[] img = new byte[(int) (32 * MIB)];
    TestImages.mbr(img, 0, new Slot(0x8e, 2048, 63488));
    TestImages.pv(img, (int) PV_AT, 63488L * SECTOR, MIB, text, textOffset);
    for (int pe = 0; pe < 30; pe++) {
      java.util.Arrays.fill(
          img,
          (int) (PV_AT + MIB + pe * MIB),
          (int) (PV_AT + MIB + (pe + 1) * MIB),
          (byte) (pe + 1));
    }
    return img;
  }

  static String vgText() {
    return TestImages.vg(
        "vg0",
        7,
        2048,
        2048,
        30,
        new Lv(
            "root",
            TestImages.VISIBLE,
            new Seg(0, 2, "striped", "pv0", 0L),
            new Seg(2, 2, "striped", "pv0", 6L)),
        new Lv("my-data", TestImages.VISIBLE, new Seg(0, 3, "striped", "pv0", 2L)),
        new Lv(
            "contig",
            TestImages.VISIBLE,
            new Seg(1, 1, "striped", "pv0", 11L),
            new Seg(0, 1, "striped", "pv0", 10L)),
        new Lv("stripes", TestImages.VISIBLE, new Seg(0, 2, "striped", "pv0", 14L, "pv1", 0L)),
        new Lv("thin1", TestImages.VISIBLE, new Seg(0, 4, "thin")),
        new Lv("snap", TestImages.VISIBLE, new Seg(0, 1, "snapshot")),
        new Lv("hidden_tmeta", List.of("READ", "WRITE"), new Seg(0, 1, "striped", "pv0", 20L)),
        new Lv(
            "elsewhere",
            TestImages.VISIBLE,
            new Seg(0, 1, "striped", "pv0", 21L),
            new Seg(1, 1, "striped", "pv1", 0L)));
  }

  private static byte[] expected(long... pes) {
    byte[] b = new byte[(int) (pes.length * MIB)];
    for (int i = 0; i < pes.length; i++) {
      java.util.Arrays.fill(b, (int) (i * MIB), (int) ((i + 1) * MIB), (byte) (pes[i] + 1));
    }
    return b;
  }

  private static byte[] readAll(Volume v, ByteSource image) throws IOException {
    ByteSource s = v.open(image);
    return s.read(0, (int) s.size());
  }

  @Test
  void lvmLinearMultiSegmentAndUnsupportedVolumes() throws IOException {
    ByteSource image = ByteSource.of(lvmImage(vgText(), 512));
    VolumeMap m = VolumeMap.scan("d.img", image);
    assertEquals(List.of(), m.warnings());
    assertEquals(
        "d.img.p1 d.img.vg0-root d.img.vg0-my--data d.img.vg0-contig d.img.vg0-stripes! d.img.vg0-thin1! "
            + "d.img.vg0-snap! d.img.vg0-hidden_tmeta! d.img.vg0-elsewhere!",
        names(m));
    assertEquals("LVM2_member", m.find("d.img.p1").orElseThrow().filesystem());

    Volume root = m.find("d.img.vg0-root").orElseThrow();
    assertEquals(
        List.of(new Extent(PV_AT + MIB, 2 * MIB), new Extent(PV_AT + 7 * MIB, 2 * MIB)),
        root.extents());
    assertEquals(4 * MIB, root.size());
    assertEquals("vg0/root", root.label());
    assertEquals("lvid-root", root.uuid());
    assertArrayEquals(expected(0, 1, 6, 7), readAll(root, image));
    byte[] across = root.open(image).read(2 * MIB - 3, 6); // a read across the segments
    assertArrayEquals(new byte[] {2, 2, 2, 7, 7, 7}, across);

    assertArrayEquals(
        expected(2, 3, 4), readAll(m.find("d.img.vg0-my--data").orElseThrow(), image));
    Volume contig = m.find("d.img.vg0-contig").orElseThrow();
    assertEquals(
        List.of(new Extent(PV_AT + 11 * MIB, 2 * MIB)),
        contig.extents(),
        "adjacent segments merge");

    assertEquals("striped over 2 stripes", m.find("d.img.vg0-stripes").orElseThrow().notExposed());
    assertEquals("segment type thin", m.find("d.img.vg0-thin1").orElseThrow().notExposed());
    assertEquals("segment type snapshot", m.find("d.img.vg0-snap").orElseThrow().notExposed());
    assertEquals(
        "hidden (internal) volume", m.find("d.img.vg0-hidden_tmeta").orElseThrow().notExposed());
    Volume elsewhere = m.find("d.img.vg0-elsewhere").orElseThrow();
    assertTrue(
        elsewhere
            .notExposed()
            .contains("pv1 (zzzzzz-zzzz-zzzz-zzzz-zzzz-zzzz-zzzzzz) is not in this image"),
        elsewhere.notExposed());
    assertEquals(2 * MIB, elsewhere.size());
    assertTrue(elsewhere.extents().isEmpty());
  }

  @Test
  void metadataThatWrapsRoundItsAreaIsRead() throws IOException {
    String text = vgText();
    VolumeMap m = VolumeMap.scan("d.img", ByteSource.of(lvmImage(text, TestImages.MDA_SIZE - 300)));
    assertEquals(List.of(), m.warnings());
    assertTrue(m.find("d.img.vg0-root").orElseThrow().exposed());
  }

  @Test
  void aWholeImagePv() throws IOException {
    byte[] img = new byte[(int) (16 * MIB)];
    TestImages.pv(
        img,
        0,
        img.length,
        MIB,
        TestImages.vg(
            "data-vg",
            1,
            2048,
            2048,
            15,
            new Lv("lv", TestImages.VISIBLE, new Seg(0, 2, "striped", "pv0", 3L))),
        512);
    VolumeMap m = VolumeMap.scan("d.img", ByteSource.of(img));
    assertEquals("none", m.table());
    assertEquals("LVM2_member", m.filesystem());
    assertEquals("d.img.data--vg-lv", names(m));
    assertEquals(List.of(new Extent(4 * MIB, 2 * MIB)), m.volumes().get(0).extents());
  }

  @Test
  void damagedMetadataChecksumGivesNoLogicalVolumes() throws IOException {
    byte[] img = lvmImage(vgText(), 512);
    img[(int) (PV_AT + TestImages.MDA_OFFSET + 512 + 10)] ^= 1;
    VolumeMap m = VolumeMap.scan("d.img", ByteSource.of(img));
    assertEquals("d.img.p1", names(m));
    assertTrue(
        m.warnings().get(0).contains("LVM metadata checksum mismatch"), m.warnings().toString());
  }

  @Test
  void damagedLabelChecksumIsReported() throws IOException {
    byte[] img = lvmImage(vgText(), 512);
    img[(int) (PV_AT + SECTOR + 40)] ^= 1; // in the PV UUID
    VolumeMap m = VolumeMap.scan("d.img", ByteSource.of(img));
    assertEquals("d.img.p1", names(m));
    assertTrue(
        m.warnings().get(0).contains("LVM label checksum mismatch"), m.warnings().toString());
  }

  @Test
  void hostileMetadataIsRejected() throws IOException {
    String[][] cases = {
      {"pe_start = 2048", "pe_start = -5"}, // before the PV
      {"extent_size = 2048", "extent_size = 0"},
      {"start_extent = 2\nextent_count = 2", "start_extent = 3\nextent_count = 2"}, // a gap
      {"\"pv0\", 6", "\"pv0\", 29"}, // past pe_count
      {"\"pv0\", 2\n", "\"pv0\", 1\n"}, // my-data overlaps root
      {"\"pv0\", 6", "\"pv7\", 6"}, // a PV the group does not have
      {"extent_size = 2048", "extent_size = 2048 {"},
    };
    for (String[] c : cases) {
      String text = vgText();
      assertTrue(text.contains(c[0]), c[0]);
      VolumeMap m =
          VolumeMap.scan(
              "d.img",
              ByteSource.of(
                  lvmImage(
                      text.replaceFirst(
                          java.util.regex.Pattern.quote(c[0]),
                          java.util.regex.Matcher.quoteReplacement(c[1])),
                      512)));
      assertEquals("d.img.p1", names(m), c[1]);
      assertEquals(1, m.warnings().size(), c[1] + ": " + m.warnings());
      assertTrue(m.warnings().get(0).startsWith("LVM"), m.warnings().get(0));
    }
  }

  @Test
  void pvPastTheEndOfItsPartitionIsRejected() throws IOException {
    String text =
        TestImages.vg(
            "vg0",
            1,
            2048,
            2048,
            100,
            new Lv("big", TestImages.VISIBLE, new Seg(0, 40, "striped", "pv0", 0L)));
    VolumeMap m = VolumeMap.scan("d.img", ByteSource.of(lvmImage(text, 512)));
    assertEquals("d.img.p1", names(m));
    assertTrue(m.warnings().get(0).contains("past the end of d.img.p1"), m.warnings().toString());
  }

  @Test
  void extentSourceReadsAcrossExtentsAndChecksBounds() throws IOException {
    byte[] base = new byte[100];
    for (int i = 0; i < base.length; i++) {
      base[i] = (byte) i;
    }
    ByteSource s =
        new ExtentSource(
            ByteSource.of(base), List.of(new Extent(90, 5), new Extent(10, 3), new Extent(50, 4)));
    assertEquals(12, s.size());
    assertArrayEquals(new byte[] {90, 91, 92, 93, 94, 10, 11, 12, 50, 51, 52, 53}, s.read(0, 12));
    assertArrayEquals(new byte[] {12, 50}, s.read(7, 2));
    assertThrowsEof(() -> s.read(11, 2));
    assertThrowsEof(() -> s.read(-1, 1));
    assertFalse(s.slice(2, 3).size() != 3);
    assertArrayEquals(new byte[] {92, 93, 94}, s.slice(2, 3).read(0, 3));
  }

  private static void assertThrowsEof(org.junit.jupiter.api.function.Executable e) {
    org.junit.jupiter.api.Assertions.assertThrows(java.io.EOFException.class, e);
  }

  /** Counts what a scan reads: no read may be absurd, whatever the table says. */
  static final class CountingSource implements ByteSource {
    final ByteSource inner;
    long largest;
    long total;

    CountingSource(ByteSource inner) {
      this.inner = inner;
    }

    @Override
    public long size() {
      return inner.size();
    }

    @Override
    public void read(long offset, byte[] dst, int off, int len) throws IOException {
      largest = Math.max(largest, len);
      total += len;
      inner.read(offset, dst, off, len);
    }
  }
}
