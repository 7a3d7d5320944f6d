package dev.thaw.files;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Builds small exFAT volumes for the reader's tests, laid out as the exFAT specification (2019)
 * says and as {@code mkfs.exfat} does: main and backup boot regions with their checksums, one or
 * two FATs, the allocation bitmap, an up-case table, the root directory with its volume label,
 * bitmap and up-case entries, and file entry sets with their name hashes and set checksums. Files
 * may lie in a FAT chain, in a fragmented chain, or in contiguous clusters that the FAT does not
 * describe ({@code NoFatChain}); bytes past a file's valid data length are filled with {@code
 * 0xEE}, which a reader must not return. After {@link #build} each {@link Item} knows its first
 * cluster and where its entry set lies, for tests that damage them. Not thread-safe.
 */
final class ExFatImage {
  static final Instant STAMP = Instant.parse("2022-03-04T05:06:08Z");

  enum Layout {
    CHAIN,
    FRAGMENTED,
    CONTIGUOUS
  }

  /** A file or directory to place; fields set before {@link #build}, positions after. */
  static final class Item {
    final String name;
    final boolean dir;
    final List<Item> children = new ArrayList<>();
    byte[] data = new byte[0];

    /** Bytes of {@link #data} written; the rest of the allocation holds 0xEE. -1: all. */
    long valid = -1;

    Layout layout = Layout.CHAIN;
    int attributes;
    Instant modified = STAMP;

    /**
     * The modification time's offset from UTC in quarter hours, or null to leave it unset
     * (OffsetValid 0).
     */
    Integer quarters = 0;

    /** Clusters a directory has beyond what its entries need. */
    int spareClusters;

    /** Whether the set is written with its in-use bits cleared (a deleted file). */
    boolean deleted;

    /** Types of secondary entries after the name (vendor extensions, a later revision's). */
    int[] extra = {};

    long cluster;
    long clusters;

    /** Byte offset of the entry set in the volume; its secondary count. */
    long setAt;

    int secondaries;

    private Item(String name, boolean dir) {
      this.name = name;
      this.dir = dir;
    }

    Item dir(String name) {
      Item d = new Item(name, true);
      children.add(d);
      return d;
    }

    Item file(String name, byte[] data) {
      Item f = new Item(name, false);
      f.data = data;
      children.add(f);
      return f;
    }
  }

  final int sectorShift;
  final int clusterShift;
  final long volumeBytes;
  final Item root = new Item("", true);
  int fats = 1;
  int activeFat;

  long fatOffset;
  long fatLength;
  long heapOffset;
  long clusterCount;
  long clusterSize;
  private byte[] img;
  private long nextCluster;
  private long[] fat;
  private final List<Item> sets = new ArrayList<>();

  ExFatImage(long volumeBytes, int sectorShift, int clusterShift) {
    this.volumeBytes = volumeBytes;
    this.sectorShift = sectorShift;
    this.clusterShift = clusterShift;
  }

  byte[] build() {
    int sector = 1 << sectorShift;
    long sectors = volumeBytes / sector;
    fatOffset = 24;
    long maxClusters = (sectors - fatOffset) >> clusterShift;
    fatLength = ((maxClusters + 2) * 4 + sector - 1) / sector;
    long spc = 1L << clusterShift;
    heapOffset = (fatOffset + fats * fatLength + spc - 1) / spc * spc;
    clusterCount = (sectors - heapOffset) >> clusterShift;
    clusterSize = (long) sector << clusterShift;
    img = new byte[(int) volumeBytes];
    fat = new long[(int) clusterCount + 2];
    fat[0] = 0xfffffff8L;
    fat[1] = 0xffffffffL;
    nextCluster = 2;
    sets.clear();

    long bitmapBytes = (clusterCount + 7) / 8;
    long bitmap = allocate(bitmapBytes, Layout.CHAIN);
    byte[] upcase = upcaseTable();
    long upcaseCluster = allocate(upcase.length, Layout.CHAIN);
    write(upcaseCluster, upcase, upcase.length, Layout.CHAIN);
    place(root);

    // root: volume label, bitmap, up-case table, then the sets
    byte[] head = new byte[96];
    head[0] = (byte) 0x83;
    String label = "THAW";
    head[1] = (byte) label.length();
    for (int i = 0; i < label.length(); i++) {
      le(head, 2 + 2 * i, label.charAt(i), 2);
    }
    head[32] = (byte) 0x81;
    le(head, 32 + 20, bitmap, 4);
    le(head, 32 + 24, bitmapBytes, 8);
    head[64] = (byte) 0x82;
    le(head, 64 + 4, checksum32(upcase, upcase.length), 4);
    le(head, 64 + 20, upcaseCluster, 4);
    le(head, 64 + 24, upcase.length, 8);
    writeDirectory(root, head);

    byte[] bits = new byte[(int) bitmapBytes];
    for (long c = 2; c < nextCluster; c++) {
      bits[(int) (c - 2) / 8] |= (byte) (1 << ((c - 2) % 8));
    }
    write(bitmap, bits, bits.length, Layout.CHAIN);
    for (int f = 0; f < fats; f++) {
      long at = (fatOffset + f * fatLength) * sector;
      for (int c = 0; c < fat.length; c++) {
        le(img, (int) (at + 4L * c), f == activeFat ? fat[c] : 0x0badf00dL, 4);
      }
    }
    bootRegion(sectors);
    return img;
  }

  /** Sets the root's and each directory's clusters, then each child's, depth first. */
  private void place(Item d) {
    long bytes = d == root ? 96 : 0;
    for (Item c : d.children) {
      bytes += 32L * (2 + (c.name.length() + 14) / 15 + c.extra.length);
    }
    long clusters = Math.max(1, (bytes + clusterSize - 1) / clusterSize) + d.spareClusters;
    d.data = new byte[(int) (clusters * clusterSize)];
    d.cluster = allocate(d.data.length, d.layout);
    d.clusters = clusters;
    for (Item c : d.children) {
      if (c.dir) {
        place(c);
      } else if (c.data.length > 0) {
        c.cluster = allocate(c.data.length, c.layout);
        c.clusters = (c.data.length + clusterSize - 1) / clusterSize;
        long valid = c.valid < 0 ? c.data.length : c.valid;
        byte[] onDisk = Arrays.copyOf(c.data, (int) (c.clusters * clusterSize));
        Arrays.fill(onDisk, (int) valid, onDisk.length, (byte) 0xee);
        write(c.cluster, onDisk, onDisk.length, c.layout);
      }
    }
  }

  /** Writes the entry sets of {@code d}'s children after {@code head}, into its clusters. */
  private void writeDirectory(Item d, byte[] head) {
    System.arraycopy(head, 0, d.data, 0, head.length);
    int at = head.length;
    for (Item c : d.children) {
      byte[] set = set(c);
      c.secondaries = set.length / 32 - 1;
      c.setAt = volumeOffset(d, at);
      System.arraycopy(set, 0, d.data, at, set.length);
      at += set.length;
      if (c.dir) {
        writeDirectory(c, new byte[0]);
      }
    }
    write(d.cluster, d.data, d.data.length, d.layout);
  }

  /** The volume offset of byte {@code at} of directory {@code d}'s data. */
  private long volumeOffset(Item d, int at) {
    long c = d.cluster;
    for (long k = at / clusterSize; k > 0; k--) {
      c = d.layout == Layout.CONTIGUOUS ? c + 1 : fat[(int) c];
    }
    return heap(c) + at % clusterSize;
  }

  private byte[] set(Item c) {
    int names = (c.name.length() + 14) / 15;
    byte[] s = new byte[32 * (2 + names + c.extra.length)];
    s[0] = (byte) 0x85;
    s[1] = (byte) (1 + names + c.extra.length);
    le(s, 4, c.attributes | (c.dir ? 0x10 : 0x20), 2);
    long stamp = stamp(c.modified, c.quarters == null ? 0 : c.quarters);
    le(s, 8, stamp(STAMP, 0), 4); // created
    le(s, 12, stamp, 4);
    le(s, 16, stamp, 4);
    s[21] = (byte) (c.modified.getEpochSecond() % 2 * 100 + c.modified.getNano() / 10_000_000);
    s[22] = (byte) 0x80;
    s[23] = (byte) (c.quarters == null ? 0 : 0x80 | (c.quarters & 0x7f));
    s[24] = s[23];
    long length = c.data.length;
    long valid = c.dir || c.valid < 0 ? length : c.valid;
    s[32] = (byte) 0xc0;
    s[33] = (byte) (length == 0 ? 1 : c.layout == Layout.CONTIGUOUS ? 3 : 1);
    s[35] = (byte) c.name.length();
    le(s, 36, nameHash(c.name), 2);
    le(s, 40, valid, 8);
    le(s, 52, length == 0 ? 0 : c.cluster, 4);
    le(s, 56, length, 8);
    for (int k = 0; k < names; k++) {
      s[64 + 32 * k] = (byte) 0xc1;
      for (int j = 0; j < 15 && k * 15 + j < c.name.length(); j++) {
        le(s, 64 + 32 * k + 2 + 2 * j, c.name.charAt(k * 15 + j), 2);
      }
    }
    for (int k = 0; k < c.extra.length; k++) {
      s[32 * (2 + names + k)] = (byte) c.extra[k];
    }
    le(s, 2, ExFat.setChecksum(s, s.length), 2);
    if (c.deleted) {
      for (int k = 0; k < s.length; k += 32) {
        s[k] &= 0x7f;
      }
    }
    return s;
  }

  /** A local time (the instant at the offset) as an exFAT timestamp. */
  private static long stamp(Instant t, int quarters) {
    LocalDateTime l = LocalDateTime.ofInstant(t, ZoneOffset.ofTotalSeconds(quarters * 900));
    long date = (l.getYear() - 1980L) << 9 | l.getMonthValue() << 5 | l.getDayOfMonth();
    long time = (long) l.getHour() << 11 | l.getMinute() << 5 | l.getSecond() / 2;
    return date << 16 | time;
  }

  /**
   * Allocates the clusters for {@code bytes} (at least one) and links them in the FAT as the layout
   * says.
   */
  private long allocate(long bytes, Layout layout) {
    int n = (int) Math.max(1, (bytes + clusterSize - 1) / clusterSize);
    long first = nextCluster;
    nextCluster += n;
    if (nextCluster > clusterCount + 2) {
      throw new IllegalStateException("the volume is full");
    }
    if (layout == Layout.CONTIGUOUS) {
      return first;
    }
    long[] order = new long[n];
    for (int i = 0; i < n; i++) {
      order[i] = first + i;
    }
    if (layout == Layout.FRAGMENTED) { // pairs in reverse order: 2 runs of 2, backwards, ...
      long[] o = new long[n];
      int k = 0;
      for (int i = (n - 1) / 2 * 2; i >= 0; i -= 2) {
        o[k++] = order[i];
        if (i + 1 < n) {
          o[k++] = order[i + 1];
        }
      }
      order = o;
    }
    for (int i = 0; i < n; i++) {
      fat[(int) order[i]] = i + 1 < n ? order[i + 1] : 0xffffffffL;
    }
    return order[0];
  }

  private void write(long first, byte[] data, int len, Layout layout) {
    long c = first;
    for (int off = 0; off < len; off += (int) clusterSize) {
      System.arraycopy(data, off, img, (int) heap(c), (int) Math.min(clusterSize, len - off));
      c = layout == Layout.CONTIGUOUS ? c + 1 : fat[(int) c];
    }
  }

  long heap(long cluster) {
    return (heapOffset << sectorShift) + (cluster - 2) * clusterSize;
  }

  /** Where the active FAT's entry for {@code cluster} lies. */
  long fatEntry(long cluster) {
    return ((fatOffset + activeFat * fatLength) << sectorShift) + 4 * cluster;
  }

  private void bootRegion(long sectors) {
    int sector = 1 << sectorShift;
    byte[] b = img;
    b[0] = (byte) 0xeb;
    b[1] = 0x76;
    b[2] = (byte) 0x90;
    System.arraycopy("EXFAT   ".getBytes(java.nio.charset.StandardCharsets.US_ASCII), 0, b, 3, 8);
    le(b, 72, sectors, 8);
    le(b, 80, fatOffset, 4);
    le(b, 84, fatLength, 4);
    le(b, 88, heapOffset, 4);
    le(b, 92, clusterCount, 4);
    le(b, 96, root.cluster, 4);
    le(b, 100, 0x1234abcdL, 4);
    le(b, 104, 0x0100, 2);
    le(b, 106, activeFat, 2);
    b[108] = (byte) sectorShift;
    b[109] = (byte) clusterShift;
    b[110] = (byte) fats;
    b[111] = (byte) 0x80;
    b[112] = (byte) 0xff;
    Arrays.fill(b, 120, 510, (byte) 0xf4);
    le(b, 510, 0xaa55, 2);
    for (int s = 1; s <= 8; s++) {
      le(b, s * sector + sector - 4, 0xaa550000L, 4);
    }
    rechecksum();
  }

  /**
   * Writes the boot checksum of sectors 0-10 into sector 11 and copies the region to its backup.
   */
  void rechecksum() {
    rechecksum(img);
  }

  void rechecksum(byte[] b) {
    int sector = 1 << sectorShift;
    long sum = ExFat.bootChecksum(b, 11 * sector);
    for (int at = 11 * sector; at < 12 * sector; at += 4) {
      le(b, at, sum, 4);
    }
    System.arraycopy(b, 0, b, 12 * sector, 12 * sector);
  }

  /**
   * Recomputes the set checksum of {@code item}'s entry set in {@code b}, after a test changed it.
   */
  static void resum(byte[] b, Item item) {
    int len = 32 * (item.secondaries + 1);
    byte[] s = Arrays.copyOfRange(b, (int) item.setAt, (int) item.setAt + len);
    le(b, (int) item.setAt + 2, ExFat.setChecksum(s, len), 2);
  }

  /**
   * An up-case table mapping each UTF-16 unit as {@link Character#toUpperCase(char)}, identity runs
   * compressed.
   */
  private static byte[] upcaseTable() {
    ByteBuffer t = ByteBuffer.allocate(1 << 18).order(ByteOrder.LITTLE_ENDIAN);
    int ch = 0;
    while (ch < 0x10000) {
      int run = 0;
      while (ch + run < 0x10000 && Character.toUpperCase((char) (ch + run)) == ch + run) {
        run++;
      }
      if (run > 2) {
        t.putChar((char) 0xffff).putChar((char) run);
        ch += run;
      } else {
        t.putChar(Character.toUpperCase((char) ch));
        ch++;
      }
    }
    return Arrays.copyOf(t.array(), t.position());
  }

  private static long checksum32(byte[] b, int len) {
    int sum = 0;
    for (int i = 0; i < len; i++) {
      sum = Integer.rotateRight(sum, 1) + (b[i] & 0xff);
    }
    return sum & 0xffffffffL;
  }

  private static int nameHash(String name) {
    int hash = 0;
    for (int i = 0; i < name.length(); i++) {
      char u = Character.toUpperCase(name.charAt(i));
      for (int v : new int[] {u & 0xff, u >>> 8}) {
        hash = ((hash & 1) << 15 | hash >>> 1) + v;
        hash &= 0xffff;
      }
    }
    return hash;
  }

  static void le(byte[] b, int at, long v, int n) {
    for (int i = 0; i < n; i++) {
      b[at + i] = (byte) (v >>> (8 * i));
    }
  }
}
