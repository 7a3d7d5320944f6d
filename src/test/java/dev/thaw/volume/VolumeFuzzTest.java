package dev.thaw.volume;

import static dev.thaw.volume.TestImages.SECTOR;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Random corruptions of valid tables: the scan never throws, reads nothing absurd, and every volume
 * it still exposes lies within the image, without overlaps and with unique names. Half of the
 * corruptions are resealed (CRCs recomputed) so that the checks behind the CRCs are reached too.
 */
class VolumeFuzzTest {
  private static final int ROUNDS = 300;

  private static void check(String what, byte[] img, long seed) {
    VolumeMapTest.CountingSource src = new VolumeMapTest.CountingSource(ByteSource.of(img));
    VolumeMap m;
    try {
      m = VolumeMap.scan("f.img", src);
    } catch (IOException | RuntimeException e) {
      throw new AssertionError(what + " seed " + seed + ": the scan threw " + e, e);
    }
    assertTrue(
        src.largest <= Lvm.MAX_METADATA, what + " seed " + seed + ": a read of " + src.largest);
    assertTrue(src.total <= 64L << 20, what + " seed " + seed + ": read " + src.total + " bytes");
    Set<String> names = new HashSet<>();
    for (Volume v : m.volumes()) {
      assertTrue(names.add(v.name()), what + " seed " + seed + ": two volumes named " + v.name());
      for (Extent e : v.extents()) {
        assertTrue(
            e.end() <= img.length,
            what + " seed " + seed + ": " + v.name() + " ends past the image");
      }
    }
  }

  private static void corrupt(byte[] img, Random r, int from, int to) {
    int n = 1 + r.nextInt(4);
    for (int i = 0; i < n; i++) {
      int at = from + r.nextInt(to - from);
      switch (r.nextInt(3)) {
        case 0 -> img[at] = (byte) r.nextInt(256);
        case 1 -> img[at] ^= (byte) (1 << r.nextInt(8));
        default -> { // a large or boundary value in a whole field
          long v = r.nextBoolean() ? -1L : r.nextBoolean() ? 0 : 1L << r.nextInt(63);
          int field = at & ~7;
          if (field + 8 <= to) {
            TestImages.le(img, field, v, 8);
          }
        }
      }
    }
  }

  @Test
  void corruptedMbrChains() {
    byte[] valid = VolumeMapTest.mbrWithLogicals();
    Random r = new Random(1);
    for (int round = 0; round < ROUNDS; round++) {
      byte[] img = valid.clone();
      long[] ebrs = {0, 6144, 12288, 16384};
      long s = ebrs[r.nextInt(ebrs.length)];
      corrupt(img, r, (int) (s * SECTOR + 446), (int) (s * SECTOR + 512));
      check("mbr", img, round);
    }
  }

  @Test
  void corruptedGpts() {
    byte[] valid = VolumeMapTest.gpt();
    long sectors = valid.length / SECTOR;
    Random r = new Random(2);
    for (int round = 0; round < ROUNDS; round++) {
      byte[] img = valid.clone();
      boolean primary = r.nextBoolean();
      long header = primary ? 1 : sectors - 1;
      long array = primary ? 2 : sectors - 33;
      if (r.nextBoolean()) {
        corrupt(img, r, (int) (header * SECTOR), (int) (header * SECTOR + 92));
      } else {
        corrupt(img, r, (int) (array * SECTOR), (int) (array * SECTOR + 6 * 128));
      }
      if (r.nextBoolean()) { // reseal both copies so that only the semantic checks remain
        for (long[] c : new long[][] {{1, 2}, {sectors - 1, sectors - 33}}) {
          int h = (int) (c[0] * SECTOR);
          long arrayBytes = Bytes.u32(img, h + 80) * Bytes.u32(img, h + 84);
          if (arrayBytes > 0 && c[1] * SECTOR + arrayBytes <= img.length) {
            TestImages.le(
                img, h + 88, Bytes.crc32(img, (int) (c[1] * SECTOR), (int) arrayBytes), 4);
          }
          TestImages.resealHeader(img, c[0]);
        }
      }
      check("gpt", img, round);
    }
  }

  @Test
  void corruptedLvmLabelsAndMetadata() {
    String text = VolumeMapTest.vgText();
    byte[] valid = VolumeMapTest.lvmImage(text, 512);
    int pv = (int) VolumeMapTest.PV_AT;
    Random r = new Random(3);
    for (int round = 0; round < ROUNDS; round++) {
      byte[] img;
      switch (r.nextInt(4)) {
        case 0 -> { // label and PV header
          img = valid.clone();
          corrupt(img, r, pv + SECTOR, pv + 2 * SECTOR);
        }
        case 1 -> { // metadata area header
          img = valid.clone();
          corrupt(img, r, pv + TestImages.MDA_OFFSET, pv + TestImages.MDA_OFFSET + 64);
        }
        case 2 -> { // a number of the text, with valid checksums
          java.util.regex.Matcher m = java.util.regex.Pattern.compile("\\d+").matcher(text);
          java.util.List<int[]> spans = new java.util.ArrayList<>();
          while (m.find()) {
            spans.add(new int[] {m.start(), m.end()});
          }
          int[] s = spans.get(r.nextInt(spans.size()));
          String[] values = {
            "0",
            "-1",
            "1",
            "29",
            "30",
            "31",
            "4294967296",
            "9223372036854775807",
            Long.toString(r.nextInt(100))
          };
          img =
              VolumeMapTest.lvmImage(
                  text.substring(0, s[0]) + values[r.nextInt(values.length)] + text.substring(s[1]),
                  512);
        }
        default -> { // the text, with valid checksums
          char[] t = text.toCharArray();
          int n = 1 + r.nextInt(6);
          for (int i = 0; i < n; i++) {
            t[r.nextInt(t.length)] = "0123456789{}[]\",=-# \nx".charAt(r.nextInt(22));
          }
          img = VolumeMapTest.lvmImage(new String(t), 512);
        }
      }
      check("lvm", img, round);
    }
  }
}
