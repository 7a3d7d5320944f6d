package dev.thaw.volume;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The MBR partition table: four primary slots, extended partitions and the chain of extended boot
 * records (EBRs) that holds the logical partitions. Sectors are 512 bytes.
 */
final class Mbr {
  static final int SECTOR = 512;

  /** More logical partitions than this is a hostile chain (Linux shows at most 256 minors). */
  static final int MAX_LOGICAL = 256;

  private Mbr() {}

  /** A slot of a partition table. */
  record Entry(int boot, int type, long start, long sectors) {
    boolean empty() {
      return type == 0 || sectors == 0;
    }
  }

  /** The four slots of the sector, or null when it has no MBR signature or valid boot flags. */
  static Entry[] entries(byte[] sector) {
    if (sector.length < SECTOR || (sector[510] & 0xff) != 0x55 || (sector[511] & 0xff) != 0xaa) {
      return null;
    }
    Entry[] e = new Entry[4];
    for (int i = 0; i < 4; i++) {
      int at = 446 + 16 * i;
      int boot = sector[at] & 0xff;
      if (boot != 0 && boot != 0x80) {
        return null; // boot code of a filesystem's boot sector, not a partition table
      }
      e[i] =
          new Entry(
              boot, sector[at + 4] & 0xff, Bytes.u32(sector, at + 8), Bytes.u32(sector, at + 12));
    }
    return e;
  }

  static boolean isProtective(Entry[] e) {
    for (Entry x : e) {
      if (x.type() == 0xee) {
        return true;
      }
    }
    return false;
  }

  /**
   * The partitions of an MBR whose slots are {@code slots}, extended ones listed (not exposed),
   * logical ones numbered from 5 in chain order.
   *
   * @throws VolumeException for a table to distrust: past the end, overlapping, a looping or
   *     overlong chain
   */
  static List<Volume> partitions(String image, ByteSource disk, Entry[] slots)
      throws IOException, VolumeException {
    long sectors = disk.size() / SECTOR;
    List<Volume> out = new ArrayList<>();
    List<long[]> used = new ArrayList<>(); // [start, end) in sectors of every data partition
    List<long[]> extended = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      Entry e = slots[i];
      if (e.empty()) {
        continue;
      }
      int n = i + 1;
      check(n, e.start(), e.sectors(), 1, sectors, "the image");
      if (PartitionTypes.isExtended(e.type())) {
        extended.add(new long[] {e.start(), e.start() + e.sectors()});
        out.add(
            volume(
                image, n, e, List.of(), "extended partition: a container of logical partitions"));
      } else {
        used.add(new long[] {e.start(), e.start() + e.sectors()});
        out.add(
            volume(
                image, n, e, List.of(new Extent(e.start() * SECTOR, e.sectors() * SECTOR)), null));
      }
    }
    overlaps(used, "primary partitions overlap");
    List<long[]> all = new ArrayList<>(used);
    all.addAll(extended);
    overlaps(all, "an extended partition overlaps a primary partition");
    int next = 5;
    for (long[] ext : extended) {
      next = logicals(image, disk, ext[0], ext[1], next, out, used);
    }
    overlaps(used, "logical partitions overlap");
    return out;
  }

  /** Follows one extended partition's EBR chain; returns the next logical number. */
  private static int logicals(
      String image,
      ByteSource disk,
      long extStart,
      long extEnd,
      int next,
      List<Volume> out,
      List<long[]> used)
      throws IOException, VolumeException {
    Set<Long> seen = new HashSet<>();
    long ebr = extStart;
    while (true) {
      if (!seen.add(ebr)) {
        throw new VolumeException("the chain of extended boot records loops at sector " + ebr);
      }
      if (next - 5 >= MAX_LOGICAL || seen.size() > 2 * MAX_LOGICAL) {
        throw new VolumeException("more than " + MAX_LOGICAL + " logical partitions");
      }
      Entry[] e = entries(disk.read(ebr * SECTOR, SECTOR));
      if (e == null) {
        if (ebr == extStart) {
          return next; // an empty extended partition
        }
        throw new VolumeException("extended boot record at sector " + ebr + " has no signature");
      }
      Entry link = null; // the first extended entry of the EBR links to the next EBR
      for (int i = 0; i < 2; i++) {
        Entry x = e[i];
        if (x.empty()) {
          continue;
        }
        if (PartitionTypes.isExtended(x.type())) {
          link = link == null ? x : link;
          continue;
        }
        long start = ebr + x.start();
        check(next, start, x.sectors(), extStart + 1, extEnd, "its extended partition");
        used.add(new long[] {start, start + x.sectors()});
        out.add(
            volume(
                image,
                next,
                new Entry(x.boot(), x.type(), start, x.sectors()),
                List.of(new Extent(start * SECTOR, x.sectors() * SECTOR)),
                null));
        next++;
      }
      if (link == null) {
        return next;
      }
      long nextEbr = extStart + link.start();
      if (nextEbr <= extStart || nextEbr >= extEnd) {
        throw new VolumeException(
            "extended boot record at sector " + ebr + " links outside its extended partition");
      }
      ebr = nextEbr;
    }
  }

  private static void check(int n, long start, long count, long min, long end, String what)
      throws VolumeException {
    if (start < min || count <= 0 || start + count > end) {
      throw new VolumeException(
          "partition "
              + n
              + " (sectors "
              + start
              + "+"
              + count
              + ") lies outside "
              + what
              + " (sectors "
              + min
              + ".."
              + end
              + ")");
    }
  }

  /** Throws when two of the [start, end) ranges overlap. */
  static void overlaps(List<long[]> ranges, String what) throws VolumeException {
    List<long[]> s = new ArrayList<>(ranges);
    s.sort((a, b) -> Long.compare(a[0], b[0]));
    for (int i = 1; i < s.size(); i++) {
      if (s.get(i)[0] < s.get(i - 1)[1]) {
        throw new VolumeException(
            what
                + " (sectors "
                + s.get(i - 1)[0]
                + ".."
                + s.get(i - 1)[1]
                + " and "
                + s.get(i)[0]
                + ".."
                + s.get(i)[1]
                + ")");
      }
    }
  }

  private static Volume volume(
      String image, int n, Entry e, List<Extent> extents, String notExposed) {
    return new Volume(
        image + ".p" + n,
        Volume.Kind.PARTITION,
        "mbr",
        PartitionTypes.mbrId(e.type()),
        PartitionTypes.mbr(e.type()),
        "",
        "",
        extents,
        e.sectors() * SECTOR,
        "",
        notExposed);
  }
}
