package dev.thaw.volume;

import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.List;

/**
 * Builds partition tables and LVM2 physical volumes in byte arrays, from the specifications (UEFI
 * chapter 5 for GPT; LVM2's label.h and layout.h for the label, PV header and metadata area), for
 * the parser tests.
 */
final class TestImages {
  static final int SECTOR = 512;

  private TestImages() {}

  static void le(byte[] b, int at, long v, int bytes) {
    for (int i = 0; i < bytes; i++) {
      b[at + i] = (byte) (v >>> (8 * i));
    }
  }

  static void ascii(byte[] b, int at, String s) {
    byte[] x = s.getBytes(StandardCharsets.ISO_8859_1);
    System.arraycopy(x, 0, b, at, x.length);
  }

  // ---- MBR

  /** One MBR slot: type, first sector (relative as the table wants it), sectors. */
  record Slot(int type, long start, long sectors) {}

  /** Writes an MBR (or EBR) sector at {@code sector} with up to four slots. */
  static void mbr(byte[] img, long sector, Slot... slots) {
    int base = (int) (sector * SECTOR);
    for (int i = 0; i < slots.length; i++) {
      int at = base + 446 + 16 * i;
      img[at] = 0;
      img[at + 4] = (byte) slots[i].type();
      le(img, at + 8, slots[i].start(), 4);
      le(img, at + 12, slots[i].sectors(), 4);
    }
    img[base + 510] = 0x55;
    img[base + 511] = (byte) 0xaa;
  }

  // ---- GPT

  record GptPart(String type, String uuid, long first, long last, String name) {}

  static final String LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
  static final String LVM = "E6D6D379-F507-44C2-A23C-238F2A3DF928";
  static final String EFI = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
  static final String SWAP = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F";
  static final String BASIC_DATA = "EBD0A0A2-B9E5-4933-87C0-68B6B72699C7";
  static final String BIOS_BOOT = "21686148-6449-6E6F-744E-656564454649";

  static byte[] guid(String s) {
    byte[] raw = HexFormat.of().parseHex(s.replace("-", ""));
    byte[] g = raw.clone();
    int[] swap = {3, 2, 1, 0, 5, 4, 7, 6};
    for (int i = 0; i < 8; i++) {
      g[i] = raw[swap[i]];
    }
    return g;
  }

  /** A GPT of 128 entries (16 KiB arrays) with a protective MBR, primary and backup copies. */
  static byte[] gpt(int sizeMiB, GptPart... parts) {
    byte[] img = new byte[sizeMiB << 20];
    long sectors = img.length / SECTOR;
    mbr(img, 0, new Slot(0xee, 1, sectors - 1));
    byte[] array = new byte[128 * 128];
    for (int i = 0; i < parts.length; i++) {
      GptPart p = parts[i];
      int at = i * 128;
      System.arraycopy(guid(p.type()), 0, array, at, 16);
      System.arraycopy(guid(p.uuid()), 0, array, at + 16, 16);
      le(array, at + 32, p.first(), 8);
      le(array, at + 40, p.last(), 8);
      byte[] name = p.name().getBytes(StandardCharsets.UTF_16LE);
      System.arraycopy(name, 0, array, at + 56, Math.min(72, name.length));
    }
    System.arraycopy(array, 0, img, 2 * SECTOR, array.length);
    System.arraycopy(array, 0, img, (int) ((sectors - 33) * SECTOR), array.length);
    gptHeader(img, 1, sectors - 1, 2, sectors, array);
    gptHeader(img, sectors - 1, 1, sectors - 33, sectors, array);
    return img;
  }

  static void gptHeader(
      byte[] img, long my, long alternate, long entriesLba, long sectors, byte[] array) {
    byte[] h = new byte[92];
    ascii(h, 0, "EFI PART");
    le(h, 8, 0x00010000, 4);
    le(h, 12, 92, 4);
    le(h, 24, my, 8);
    le(h, 32, alternate, 8);
    le(h, 40, 34, 8);
    le(h, 48, sectors - 34, 8);
    System.arraycopy(guid("11111111-2222-3333-4444-555555555555"), 0, h, 56, 16);
    le(h, 72, entriesLba, 8);
    le(h, 80, array.length / 128, 4);
    le(h, 84, 128, 4);
    le(h, 88, Bytes.crc32(array, 0, array.length), 4);
    le(h, 16, Bytes.crc32(h, 0, 92), 4);
    System.arraycopy(h, 0, img, (int) (my * SECTOR), 92);
  }

  /** Recomputes the header CRC of the GPT header at {@code lba} (after a test changed a field). */
  static void resealHeader(byte[] img, long lba) {
    int at = (int) (lba * SECTOR);
    le(img, at + 16, 0, 4);
    le(img, at + 16, Bytes.crc32(img, at, 92), 4);
  }

  // ---- LVM2

  static final String PV_UUID = "abcdefABCDEF0123456789ghijklmnop";
  static final String PV_ID = "abcdef-ABCD-EF01-2345-6789-ghij-klmnop";
  static final int MDA_OFFSET = 4096;
  static final int MDA_SIZE = (1 << 20) - MDA_OFFSET; // up to pe_start, as pvcreate lays it out

  /**
   * Writes an LVM2 PV label, PV header and metadata area into {@code img} at byte {@code pv}, with
   * {@code text} as the current metadata at {@code textOffset} within the area (it wraps round the
   * ring when it does not fit before the area's end).
   */
  static void pv(byte[] img, int pv, long pvSize, long peStartBytes, String text, int textOffset) {
    int label = pv + SECTOR; // sector 1, as pvcreate writes it
    ascii(img, label, "LABELONE");
    le(img, label + 8, 1, 8);
    le(img, label + 20, 32, 4);
    ascii(img, label + 24, "LVM2 001");
    int h = label + 32;
    ascii(img, h, PV_UUID);
    le(img, h + 32, pvSize, 8);
    le(img, h + 40, peStartBytes, 8); // data area, then its terminator
    le(img, h + 56, 0, 8);
    le(img, h + 72, MDA_OFFSET, 8); // metadata area, then its terminator
    le(img, h + 80, MDA_SIZE, 8);
    le(img, label + 16, Bytes.crc32Raw(Lvm.INITIAL_CRC, img, label + 20, SECTOR - 20), 4);

    byte[] t = text.getBytes(StandardCharsets.UTF_8);
    int mda = pv + MDA_OFFSET;
    int first = Math.min(t.length, MDA_SIZE - textOffset);
    System.arraycopy(t, 0, img, mda + textOffset, first);
    System.arraycopy(t, first, img, mda + SECTOR, t.length - first);
    ascii(img, mda + 4, Lvm.MDA_MAGIC);
    le(img, mda + 20, 1, 4);
    le(img, mda + 24, MDA_OFFSET, 8);
    le(img, mda + 32, MDA_SIZE, 8);
    le(img, mda + 40, textOffset, 8);
    le(img, mda + 48, t.length, 8);
    le(img, mda + 56, Bytes.crc32Raw(Lvm.INITIAL_CRC, t, 0, t.length), 4);
    le(img, mda, Bytes.crc32Raw(Lvm.INITIAL_CRC, img, mda + 4, SECTOR - 4), 4);
  }

  /** A segment of an LV: {@code stripes} pairs of PV key and first PE, or another type. */
  record Seg(long start, long count, String type, Object... stripes) {}

  record Lv(String name, List<String> status, Seg... segs) {}

  /**
   * The metadata text of a VG with the given LVs and two PVs: {@code pv0} ({@link #PV_ID}, the one
   * {@link #pv} writes) and {@code pv1}, which no test image holds.
   */
  static String vg(
      String name, long seqno, long extentSectors, long peStartSectors, long peCount, Lv... lvs) {
    StringBuilder s = new StringBuilder();
    s.append(name)
        .append(" {\nid = \"vgid00-0000-0000-0000-0000-0000-000000\"\nseqno = ")
        .append(seqno)
        .append("\nformat = \"lvm2\"\nstatus = [\"RESIZEABLE\", \"READ\", \"WRITE\"]\nflags = []\n")
        .append("extent_size = ")
        .append(extentSectors)
        .append("\nmax_lv = 0\nmax_pv = 0\n\n")
        .append("physical_volumes {\n\npv0 {\nid = \"")
        .append(PV_ID)
        .append("\"\ndevice = \"/dev/vda2\"\n")
        .append("status = [\"ALLOCATABLE\"]\nflags = []\ndev_size = 30720\npe_start = ")
        .append(peStartSectors)
        .append("\npe_count = ")
        .append(peCount)
        .append("\n}\n\npv1 {\nid = \"zzzzzz-zzzz-zzzz-zzzz-zzzz-zzzz-zzzzzz\"\n")
        .append(
            "device = \"/dev/vdb\"\nstatus = [\"ALLOCATABLE\"]\nflags = []\ndev_size = 30720\npe_start = 2048\n")
        .append("pe_count = 10\n}\n}\n\nlogical_volumes {\n");
    for (Lv lv : lvs) {
      s.append("\n")
          .append(lv.name())
          .append(" {\nid = \"lvid-")
          .append(lv.name())
          .append("\"\nstatus = [");
      s.append(String.join(", ", lv.status().stream().map(x -> "\"" + x + "\"").toList()));
      s.append("]\nflags = []\ncreation_time = 1700000000\t# 2023-11-14\nsegment_count = ")
          .append(lv.segs().length);
      for (int i = 0; i < lv.segs().length; i++) {
        Seg g = lv.segs()[i];
        s.append("\n\nsegment")
            .append(i + 1)
            .append(" {\nstart_extent = ")
            .append(g.start())
            .append("\nextent_count = ")
            .append(g.count())
            .append("\n\ntype = \"")
            .append(g.type())
            .append("\"\n");
        if (g.type().equals("striped")) {
          s.append("stripe_count = ").append(g.stripes().length / 2).append("\n");
          if (g.stripes().length > 2) {
            s.append("stripe_size = 128\n");
          }
          s.append("\nstripes = [\n");
          for (int k = 0; k < g.stripes().length; k += 2) {
            s.append(k > 0 ? ",\n" : "")
                .append("\"")
                .append(g.stripes()[k])
                .append("\", ")
                .append(g.stripes()[k + 1]);
          }
          s.append("\n]\n");
        } else if (g.type().equals("thin")) {
          s.append("thin_pool = \"pool\"\ntransaction_id = 1\ndevice_id = 1\n");
        }
        s.append("}\n");
      }
      s.append("}\n");
    }
    s.append(
            "}\n}\n# Generated by LVM2 version 2.03.16(2) (2022-05-18): Sun Nov 30 05:00:00 2026\n\n")
        .append("contents = \"Text Format Volume Group\"\nversion = 1\n\ndescription = \"\"\n\n")
        .append(
            "creation_host = \"test\"\t# Linux test 6.1.0 #1 SMP x86_64\ncreation_time = 1764478800\t# now\n");
    return s.toString();
  }

  static final List<String> VISIBLE = List.of("READ", "WRITE", "VISIBLE");
}
