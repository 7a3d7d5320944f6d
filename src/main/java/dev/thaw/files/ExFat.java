package dev.thaw.files;

import static dev.thaw.volume.Bytes.u16;
import static dev.thaw.volume.Bytes.u32;
import static dev.thaw.volume.Bytes.u64;
import static dev.thaw.volume.Bytes.u8;

import dev.thaw.volume.ByteSource;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * exFAT read in-process, written from Microsoft's exFAT file system specification (2019): the main
 * boot sector with its boot checksum, the active FAT's chains and contiguous ({@code NoFatChain})
 * allocations, and directory entry sets (File, Stream Extension and File Name entries, each set's
 * checksum verified): UTF-16 names of up to 255 characters, sizes, modification and access times
 * (10 ms increments; the UTC offset applied where the entry gives one, else the time read as UTC,
 * as FAT's), the read-only attribute. Bytes past a file's valid data length read as zeros. exFAT
 * has no owners or modes: directories get {@code 0755}, files {@code 0644}, without write bits when
 * read-only. The allocation bitmap, up-case table, volume label and other benign entries are
 * skipped.
 *
 * <p>Names are looked up as exFAT compares them, without regard to case: by mapping each UTF-16
 * unit to its upper case ({@link Character#toUpperCase(char)}), one unit to one as the volume's
 * up-case table does; the table itself is not read, since listed names are the entries' own and
 * only a lookup whose case differs from the entry's needs the mapping.
 *
 * <p>Every field is checked against the boot sector's bounds and those against the volume; chains
 * are walked by {@link FatTable}, directories are at most 256 MiB (the specification's limit), read
 * in 64 KiB pieces, and at most {@value FileTree#MAX_ENTRIES} entries of one are listed, so a
 * hostile image ends in a {@link FilesException} naming the path, never a loop, an unbounded
 * allocation or a read outside the volume. Thread-safe.
 */
final class ExFat implements FileTree {
  private static final long MAX_DIR_BYTES = 256L << 20;

  /**
   * Entries listed from one directory at most, so that a listing fits the heap {@code thaw files}
   * runs with; a hostile 256 MiB directory would hold 2.8 million.
   */
  private static final int DIR_BLOCK = 64 << 10;

  private static final int ENTRY = 32;
  private static final int FILE = 0x85;
  private static final int STREAM = 0xc0;
  private static final int NAME = 0xc1;

  /** File, stream extension and 17 names of 15 units: 255 units. */
  private static final int MAX_SECONDARIES = 18;

  private static final int ATTR_DIRECTORY = 0x10;

  /**
   * The stream extension's GeneralSecondaryFlags bit: the clusters follow each other, the FAT does
   * not chain them.
   */
  private static final int NO_FAT_CHAIN = 0x02;

  private final ByteSource dev;
  private final String where;
  private final long rootCluster;
  private final long maxFileBytes;
  private final FatTable fat;

  /**
   * Where a file's or directory's bytes lie, and its path for messages (kept as the parent's path,
   * which the entries of a directory share, and the name).
   *
   * @param parent the parent directory's path, or null for the root
   * @param length the data length, or -1 for the root directory (a chain to its end mark)
   * @param valid the valid data length: bytes past it read as zeros
   * @param contiguous whether the clusters follow each other and the FAT does not describe them
   */
  private record Stream(
      String parent, String name, long first, long length, long valid, boolean contiguous) {
    String path() {
      return parent == null ? "/" : parent.equals("/") ? "/" + name : parent + "/" + name;
    }
  }

  private ExFat(ByteSource dev, String where, byte[] bs) throws FilesException {
    this.dev = dev;
    this.where = where;
    int sectorShift = u8(bs, 108);
    int clusterShift = u8(bs, 109);
    int fats = u8(bs, 110);
    int flags = u16(bs, 106);
    long sectors = u64(bs, 72);
    long fatOffset = u32(bs, 80);
    long fatLength = u32(bs, 84);
    long heapOffset = u32(bs, 88);
    long clusterCount = u32(bs, 92);
    rootCluster = u32(bs, 96);
    long sector = 1L << sectorShift;
    if (fats < 1 || fats > 2 || (flags & 1) >= fats) {
      throw damaged(fats + " FATs, FAT " + (flags & 1) + " active");
    }
    if (sectors < 0 || sectors > dev.size() / sector) {
      throw damaged(
          Long.toUnsignedString(sectors)
              + " sectors of "
              + sector
              + " bytes in a "
              + dev.size()
              + "-byte volume");
    }
    if (fatOffset < 24
        || fatLength * sector < (clusterCount + 2) * 4
        || fatOffset + fatLength * fats > heapOffset
        || clusterCount == 0
        || clusterCount > 0xfffffff5L
        || heapOffset + (clusterCount << clusterShift) > sectors) {
      throw damaged(
          "impossible layout (FAT at sector "
              + fatOffset
              + ", "
              + fats
              + " of "
              + fatLength
              + " sectors, cluster heap at sector "
              + heapOffset
              + " with "
              + clusterCount
              + " clusters of "
              + (1L << clusterShift)
              + " sectors, volume of "
              + sectors
              + " sectors)");
    }
    long clusterSize = sector << clusterShift;
    fat =
        new FatTable(
            dev,
            where + ": damaged exFAT filesystem: ",
            (fatOffset + (flags & 1) * fatLength) * sector,
            fatLength * sector,
            32,
            0xffffffffL,
            clusterCount,
            heapOffset * sector,
            clusterSize);
    maxFileBytes = clusterCount * clusterSize;
    if (!fat.inHeap(rootCluster)) {
      throw damaged("the root directory's cluster " + rootCluster + " is outside the cluster heap");
    }
  }

  /**
   * Reads the main boot region of the exFAT volume in {@code dev}.
   *
   * @param where the volume's name, for messages
   * @throws FilesException when the boot sector is not exFAT's or its fields, checksum or layout do
   *     not hold
   */
  static ExFat open(ByteSource dev, String where) throws IOException {
    if (dev.size() < 512) {
      throw new FilesException(where + ": too small for exFAT");
    }
    byte[] bs = dev.read(0, 512);
    String damaged = where + ": damaged exFAT filesystem: ";
    if (!new String(bs, 3, 8, java.nio.charset.StandardCharsets.ISO_8859_1).equals("EXFAT   ")) {
      throw new FilesException(
          where + ": not an exFAT filesystem (no \"EXFAT   \" in its boot sector)");
    }
    if (u16(bs, 510) != 0xaa55) {
      throw new FilesException(
          damaged
              + "the boot sector's signature is "
              + Integer.toHexString(u16(bs, 510))
              + ", not aa55");
    }
    for (int i = 11; i < 64; i++) {
      if (bs[i] != 0) {
        throw new FilesException(damaged + "byte " + i + " of the boot sector is not zero");
      }
    }
    int sectorShift = u8(bs, 108);
    int clusterShift = u8(bs, 109);
    if (sectorShift < 9 || sectorShift > 12 || clusterShift > 25 - sectorShift) {
      throw new FilesException(
          damaged
              + "impossible boot sector (sectors of 2^"
              + sectorShift
              + " bytes, clusters of 2^"
              + clusterShift
              + " sectors)");
    }
    if (u8(bs, 105) != 1) {
      throw new FilesException(
          damaged
              + "revision "
              + u8(bs, 105)
              + "."
              + u8(bs, 104)
              + ", where thaw reads revision 1");
    }
    int sector = 1 << sectorShift;
    if (dev.size() < 12L * sector) {
      throw new FilesException(damaged + "the volume ends inside its boot region");
    }
    byte[] region = dev.read(0, 12 * sector);
    long sum = bootChecksum(region, 11 * sector);
    for (int at = 11 * sector; at < 12 * sector; at += 4) {
      if (u32(region, at) != sum) {
        throw new FilesException(
            damaged
                + "the boot checksum in sector 11 is "
                + Long.toHexString(u32(region, at))
                + ", the boot region's sectors sum to "
                + Long.toHexString(sum));
      }
    }
    return new ExFat(dev, where, bs);
  }

  /** The checksum of the first {@code len} bytes of a boot region (sector 11 holds it). */
  static long bootChecksum(byte[] b, int len) {
    int sum = 0;
    for (int i = 0; i < len; i++) {
      if (i == 106 || i == 107 || i == 112) { // VolumeFlags and PercentInUse change without it
        continue;
      }
      sum = Integer.rotateRight(sum, 1) + (b[i] & 0xff);
    }
    return sum & 0xffffffffL;
  }

  /** The checksum of a directory entry set of {@code len} bytes (the File entry's SetChecksum). */
  static int setChecksum(byte[] b, int len) {
    int sum = 0;
    for (int i = 0; i < len; i++) {
      if (i == 2 || i == 3) {
        continue;
      }
      sum = ((sum & 1) << 15 | (sum & 0xffff) >>> 1) + (b[i] & 0xff);
      sum &= 0xffff;
    }
    return sum;
  }

  @Override
  public String type() {
    return "exfat";
  }

  private FilesException damaged(String what) {
    return new FilesException(where + ": damaged exFAT filesystem: " + what);
  }

  @Override
  public boolean sameName(String listed, String asked) {
    return upcase(listed).equals(upcase(asked));
  }

  private static String upcase(String name) {
    char[] c = name.toCharArray();
    for (int i = 0; i < c.length; i++) {
      c[i] = Character.toUpperCase(c[i]);
    }
    return new String(c);
  }

  // ---- directories

  @Override
  public Node root() {
    return new Node(
        rootCluster,
        Entry.Kind.DIRECTORY,
        0755,
        -1,
        -1,
        0,
        null,
        null,
        new Stream(null, "", rootCluster, -1, -1, false));
  }

  @Override
  public Node node(Named entry) {
    return entry.node();
  }

  /** The runs of a directory's entries. */
  private List<Run> directory(Stream s) throws IOException {
    if (s.length() < 0) {
      return fat.wholeChain(s.first(), MAX_DIR_BYTES, s.path());
    }
    if (s.length() > MAX_DIR_BYTES) {
      throw damaged(
          s.path() + ": a directory of " + s.length() + " bytes (exFAT's are at most 256 MiB)");
    }
    return stream(s, s.length());
  }

  /** The runs of the first {@code length} bytes of a stream. */
  private List<Run> stream(Stream s, long length) throws IOException {
    if (s.length() == 0) {
      return List.of();
    }
    if (s.first() == 0) {
      throw damaged(s.path() + ": " + s.length() + " bytes without a cluster");
    }
    if (length == 0) {
      return List.of();
    }
    return s.contiguous()
        ? fat.contiguous(s.first(), length, s.path())
        : fat.chain(s.first(), length, s.path());
  }

  @Override
  public List<Named> list(Node dir) throws IOException {
    Stream s = (Stream) dir.ref();
    Entries in = new Entries(directory(s));
    List<Named> out = new ArrayList<>();
    byte[] set = new byte[(1 + MAX_SECONDARIES) * ENTRY];
    String path = s.path();
    while (in.next(set, 0)) {
      int type = u8(set, 0);
      long index = in.count - 1;
      if (type == 0) {
        break; // the end of the directory
      }
      if (type < 0x80 || (type & 0x40) != 0) {
        continue; // unused (deleted), or a secondary entry outside a set
      }
      if (type != FILE) {
        if ((type & 0x20) == 0 && type > 0x83) {
          throw damaged(
              path
                  + ": entry "
                  + index
                  + " has type "
                  + Integer.toHexString(type)
                  + ", a critical entry exFAT 1.00 does not define");
        }
        continue; // the allocation bitmap, up-case table, volume label, a GUID, padding
      }
      int count = u8(set, 1);
      if (count < 2 || count > MAX_SECONDARIES) {
        throw damaged(
            path
                + ": the entry set at entry "
                + index
                + " has "
                + count
                + " secondary entries (2 to "
                + MAX_SECONDARIES
                + " for a file)");
      }
      for (int i = 1; i <= count; i++) {
        if (!in.next(set, i * ENTRY)) {
          throw damaged(
              path + ": the entry set at entry " + index + " runs past the directory's end");
        }
      }
      int sum = setChecksum(set, (count + 1) * ENTRY);
      if (sum != u16(set, 2)) {
        throw damaged(
            path
                + ": the entry set at entry "
                + index
                + " has checksum "
                + Integer.toHexString(u16(set, 2))
                + ", its entries sum to "
                + Integer.toHexString(sum));
      }
      if (out.size() == MAX_ENTRIES) {
        throw new FilesException(
            where
                + ": "
                + path
                + " holds more than "
                + MAX_ENTRIES
                + " files and directories, more than thaw lists in one directory");
      }
      out.add(entry(set, count, path, index));
    }
    return out;
  }

  /** The file or directory that the checked entry set in {@code set} describes. */
  private Named entry(byte[] set, int count, String dirPath, long index) throws FilesException {
    if (u8(set, ENTRY) != STREAM) {
      throw damaged(dirPath + ": the entry set at entry " + index + " has no stream extension");
    }
    int nameLength = u8(set, ENTRY + 3);
    int names = (nameLength + 14) / 15;
    if (nameLength == 0) {
      throw damaged(dirPath + ": the entry set at entry " + index + " has an empty name");
    }
    if (names > count - 1) {
      throw damaged(
          dirPath
              + ": the entry set at entry "
              + index
              + " has a name of "
              + nameLength
              + " units, more than its "
              + (count - 1)
              + " name entries hold");
    }
    char[] name = new char[names * 15];
    for (int k = 0; k < names; k++) {
      int at = (2 + k) * ENTRY;
      if (u8(set, at) != NAME) {
        throw damaged(
            dirPath
                + ": the entry set at entry "
                + index
                + " lacks part "
                + (k + 1)
                + " of its name");
      }
      for (int j = 0; j < 15; j++) {
        name[k * 15 + j] = (char) u16(set, at + 2 + 2 * j);
      }
    }
    boolean unknownCritical = false; // a later revision's data this reader cannot interpret
    for (int k = 2 + names; k <= count; k++) {
      unknownCritical |= (u8(set, k * ENTRY) & 0x20) == 0;
    }
    String n = new String(name, 0, nameLength);
    int attributes = u16(set, 4);
    boolean isDir = (attributes & ATTR_DIRECTORY) != 0;
    Entry.Kind kind =
        isDir ? Entry.Kind.DIRECTORY : unknownCritical ? Entry.Kind.OTHER : Entry.Kind.FILE;
    int streamFlags = u8(set, ENTRY + 1);
    boolean contiguous = (streamFlags & NO_FAT_CHAIN) != 0;
    long first = u32(set, ENTRY + 20);
    long length = u64(set, ENTRY + 24);
    long valid = u64(set, ENTRY + 8);
    length = length < 0 ? Long.MAX_VALUE : length; // past 2^63: beyond any heap, refused when read
    valid = valid < 0 ? Long.MAX_VALUE : valid;
    Instant mtime = time(u32(set, 12), u8(set, 21), u8(set, 23));
    if (mtime == null) {
      mtime = time(u32(set, 8), u8(set, 20), u8(set, 22));
    }
    Instant atime = time(u32(set, 16), 0, u8(set, 24));
    Stream stream = new Stream(dirPath, n, first, length, valid, contiguous);
    return new Named(
        n,
        first,
        new Node(first, kind, Fat.mode(attributes), -1, -1, length, mtime, atime, stream));
  }

  /**
   * An exFAT timestamp: FAT's date and time with 10 ms units on top, at the entry's offset from UTC
   * when it gives one (else read as UTC); null when not set or invalid.
   */
  private static Instant time(long stamp, int tenMs, int utcOffset) {
    Instant local = Fat.time((int) (stamp >>> 16), (int) (stamp & 0xffff));
    if (local == null) {
      return null;
    }
    if (tenMs < 200) {
      local = local.plusMillis(tenMs * 10L);
    }
    if ((utcOffset & 0x80) != 0) {
      int quarters = (byte) (utcOffset << 1) >> 1; // 7 bits, signed
      local = local.minusSeconds(quarters * 15L * 60);
    }
    return local;
  }

  /** A directory's 32-byte entries in order, read in pieces of at most 64 KiB. Not thread-safe. */
  private final class Entries {
    private final List<Run> runs;
    private int run;
    private long inRun;
    private byte[] buf = new byte[0];
    private int pos;
    long count;

    Entries(List<Run> runs) {
      this.runs = runs;
    }

    /** Reads the next entry into {@code dst} at {@code off}; false at the directory's end. */
    boolean next(byte[] dst, int off) throws IOException {
      for (int n = 0; n < ENTRY; ) {
        if (pos == buf.length && !fill()) {
          return false;
        }
        int k = Math.min(ENTRY - n, buf.length - pos);
        System.arraycopy(buf, pos, dst, off + n, k);
        pos += k;
        n += k;
      }
      count++;
      return true;
    }

    private boolean fill() throws IOException {
      while (run < runs.size() && inRun == runs.get(run).length()) {
        run++;
        inRun = 0;
      }
      if (run == runs.size()) {
        return false;
      }
      Run r = runs.get(run);
      int len = (int) Math.min(DIR_BLOCK, r.length() - inRun);
      buf = dev.read(r.volumeOffset() + inRun, len);
      pos = 0;
      inRun += len;
      return true;
    }
  }

  // ---- files

  @Override
  public List<Run> data(Node file) throws IOException {
    Stream s = (Stream) file.ref();
    if (s.length() > maxFileBytes) {
      throw damaged(
          s.path()
              + ": a size of "
              + s.length()
              + " bytes, more than the cluster heap's "
              + maxFileBytes);
    }
    if (s.valid() > s.length()) {
      throw damaged(s.path() + ": " + s.valid() + " valid bytes of " + s.length());
    }
    return stream(s, s.valid());
  }

  @Override
  public String readLink(Node link) throws FilesException {
    throw new FilesException(where + ": exFAT has no symlinks");
  }
}
