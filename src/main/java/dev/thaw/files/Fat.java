package dev.thaw.files;

import static dev.thaw.volume.Bytes.u16;
import static dev.thaw.volume.Bytes.u32;
import static dev.thaw.volume.Bytes.u8;

import dev.thaw.volume.ByteSource;
import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.time.DateTimeException;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;

/**
 * FAT12, FAT16 and FAT32 read in-process, written from Microsoft's FAT specification (the BPB, the
 * FAT type from the cluster count, cluster chains, 32-byte directory entries, VFAT long names with
 * their checksum): directories and files with their modification and access times (FAT keeps local
 * time without a zone; thaw reads it as UTC, as Linux mounts it by default). FAT has no owners or
 * modes: directories get {@code 0755}, files {@code 0644}, without write bits when read-only. Reads
 * the boot sector, the FAT sectors of the chains it follows, the directories on a path and the
 * file's clusters.
 *
 * <p>Chains are bounded by the cluster count and by what a file's size needs, clusters checked
 * against the data area, so a damaged or hostile FAT ends in a {@link FilesException}, never a
 * loop. Thread-safe.
 */
final class Fat implements FileTree {
  /** Directories are at most 65536 entries long (the specification's limit). */
  private static final long MAX_DIR_BYTES = 65536L * 32;

  private static final Charset OEM = oem();

  private final ByteSource dev;
  private final String where;
  private final int bytesPerSector;
  private final long rootOffset; // FAT12/16: the fixed root directory
  private final long rootBytes;
  private final int bits;
  private final long rootCluster;
  private final FatTable table;

  private static Charset oem() {
    try {
      return Charset.forName("IBM437");
    } catch (IllegalArgumentException e) {
      return StandardCharsets.ISO_8859_1;
    }
  }

  private Fat(ByteSource dev, String where, byte[] bs) throws FilesException {
    this.dev = dev;
    this.where = where;
    bytesPerSector = u16(bs, 11);
    int spc = u8(bs, 13);
    long reserved = u16(bs, 14);
    int fats = u8(bs, 16);
    long rootEntries = u16(bs, 17);
    long total = u16(bs, 19) != 0 ? u16(bs, 19) : u32(bs, 32);
    long fatSize = u16(bs, 22) != 0 ? u16(bs, 22) : u32(bs, 36);
    if (bytesPerSector < 512
        || bytesPerSector > 4096
        || Integer.bitCount(bytesPerSector) != 1
        || spc == 0
        || Integer.bitCount(spc) != 1
        || reserved == 0
        || fats == 0
        || fatSize == 0) {
      throw damaged(
          "impossible boot sector ("
              + bytesPerSector
              + " bytes per sector, "
              + spc
              + " sectors per cluster, "
              + reserved
              + " reserved, "
              + fats
              + " FATs of "
              + fatSize
              + " sectors)");
    }
    long clusterSize = (long) spc * bytesPerSector;
    long rootSectors = (rootEntries * 32 + bytesPerSector - 1) / bytesPerSector;
    long firstData = reserved + fats * fatSize + rootSectors;
    if (total <= firstData || total * bytesPerSector > dev.size()) {
      throw damaged(
          total
              + " sectors of "
              + bytesPerSector
              + " bytes, data from sector "
              + firstData
              + ", in a "
              + dev.size()
              + "-byte volume");
    }
    long clusterCount = (total - firstData) / spc;
    bits = clusterCount < 4085 ? 12 : clusterCount < 65525 ? 16 : 32;
    if (fatSize * bytesPerSector * 8 < (clusterCount + 2) * bits) {
      throw damaged("a FAT of " + fatSize + " sectors cannot hold " + clusterCount + " clusters");
    }
    rootOffset = (reserved + fats * fatSize) * bytesPerSector;
    rootBytes = rootSectors * bytesPerSector;
    table =
        new FatTable(
            dev,
            where + ": damaged FAT filesystem: ",
            reserved * bytesPerSector,
            fatSize * bytesPerSector,
            bits,
            bits == 32 ? 0x0fffffffL : (1L << bits) - 1,
            clusterCount,
            firstData * bytesPerSector,
            clusterSize);
    rootCluster = bits == 32 ? u32(bs, 44) & 0x0fffffffL : 0;
    if (bits == 32 ? !table.inHeap(rootCluster) : rootEntries == 0) {
      throw damaged("no root directory");
    }
  }

  static Fat open(ByteSource dev, String where) throws IOException {
    if (dev.size() < 512) {
      throw new FilesException(where + ": too small for FAT");
    }
    return new Fat(dev, where, dev.read(0, 512));
  }

  @Override
  public String type() {
    return "vfat";
  }

  private FilesException damaged(String what) {
    return new FilesException(where + ": damaged FAT filesystem: " + what);
  }

  // ---- directories

  @Override
  public Node root() {
    return new Node(
        bits == 32 ? rootCluster : 0,
        Entry.Kind.DIRECTORY,
        0755,
        -1,
        -1,
        0,
        null,
        null,
        bits == 32 ? rootCluster : -1L);
  }

  @Override
  public Node node(Named entry) {
    return entry.node();
  }

  @Override
  public List<Named> list(Node dir) throws IOException {
    long first = (Long) dir.ref();
    byte[] all;
    if (first < 0) { // FAT12/16 root
      all = dev.read(rootOffset, (int) rootBytes);
    } else {
      List<Run> runs = table.wholeChain(first, MAX_DIR_BYTES, "directory at cluster " + first);
      Run last = runs.get(runs.size() - 1);
      all = new byte[(int) (last.fileOffset() + last.length())];
      for (Run r : runs) {
        dev.read(r.volumeOffset(), all, (int) r.fileOffset(), (int) r.length());
      }
    }
    List<Named> out = new ArrayList<>();
    char[][] lfn = null; // the long name's parts, by order
    int lfnSum = -1;
    int expect = 0;
    for (int at = 0; at + 32 <= all.length; at += 32) {
      int first0 = u8(all, at);
      if (first0 == 0) {
        break;
      }
      int attr = u8(all, at + 11);
      if (first0 == 0xe5) {
        lfn = null;
        continue;
      }
      if ((attr & 0x3f) == 0x0f) { // a long-name entry
        int ord = first0 & 0x3f;
        if ((first0 & 0x40) != 0) {
          lfn = ord == 0 || ord > 20 ? null : new char[ord][];
          lfnSum = u8(all, at + 13);
          expect = ord;
        }
        if (lfn == null || ord != expect || u8(all, at + 13) != lfnSum) {
          lfn = null;
          continue;
        }
        char[] part = new char[13];
        int[] offs = {1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30};
        for (int k = 0; k < 13; k++) {
          part[k] = (char) u16(all, at + offs[k]);
        }
        lfn[ord - 1] = part;
        expect--;
        continue;
      }
      char[][] longName = lfn;
      lfn = null;
      if ((attr & 0x08) != 0) {
        continue; // the volume label
      }
      String name = null;
      if (longName != null && expect == 0 && checksum(all, at) == lfnSum) {
        StringBuilder sb = new StringBuilder();
        outer:
        for (char[] p : longName) {
          for (char ch : p) {
            if (ch == 0) {
              break outer;
            }
            sb.append(ch);
          }
        }
        name = sb.toString();
      }
      if (name == null) {
        name = shortName(all, at);
      }
      if (name.equals(".") || name.equals("..") || name.isEmpty()) {
        continue;
      }
      boolean isDir = (attr & 0x10) != 0;
      long cluster = u16(all, at + 26) | (bits == 32 ? (long) u16(all, at + 20) << 16 : 0);
      long size = isDir ? 0 : u32(all, at + 28);
      int mode = mode(attr);
      Instant mtime = time(u16(all, at + 24), u16(all, at + 22));
      Instant atime = time(u16(all, at + 18), 0);
      out.add(
          new Named(
              name,
              cluster,
              new Node(
                  isDir ? cluster : -1 - at,
                  isDir ? Entry.Kind.DIRECTORY : Entry.Kind.FILE,
                  mode,
                  -1,
                  -1,
                  size,
                  mtime,
                  atime,
                  cluster)));
    }
    return out;
  }

  /** The checksum of an 8.3 name that its long-name entries carry. */
  private static int checksum(byte[] b, int at) {
    int sum = 0;
    for (int i = 0; i < 11; i++) {
      sum = (((sum & 1) << 7) | (sum >>> 1)) + (b[at + i] & 0xff);
      sum &= 0xff;
    }
    return sum;
  }

  /** An 8.3 name as Windows shows it (lower case where the entry's case bits say so). */
  private static String shortName(byte[] b, int at) {
    byte[] raw = java.util.Arrays.copyOfRange(b, at, at + 11);
    if ((raw[0] & 0xff) == 0x05) {
      raw[0] = (byte) 0xe5;
    }
    String base = new String(raw, 0, 8, OEM).stripTrailing();
    String ext = new String(raw, 8, 3, OEM).stripTrailing();
    int caseBits = u8(b, at + 12);
    if ((caseBits & 0x08) != 0) {
      base = base.toLowerCase(java.util.Locale.ROOT);
    }
    if ((caseBits & 0x10) != 0) {
      ext = ext.toLowerCase(java.util.Locale.ROOT);
    }
    return ext.isEmpty() ? base : base + "." + ext;
  }

  /**
   * The mode of an entry with these attributes (FAT's and exFAT's share the bits): {@code 0755} for
   * a directory, {@code 0644} for a file, without write bits when read-only.
   */
  static int mode(int attributes) {
    int mode = (attributes & 0x10) != 0 ? 0755 : 0644;
    return (attributes & 0x01) != 0 ? mode & ~0222 : mode;
  }

  /**
   * A FAT date and time (local time, read as UTC; exFAT's timestamps hold the same two fields);
   * null when the date is not set or invalid.
   */
  static Instant time(int date, int time) {
    if (date == 0) {
      return null;
    }
    try {
      return LocalDateTime.of(
              1980 + (date >>> 9),
              (date >>> 5) & 15,
              date & 31,
              time >>> 11,
              (time >>> 5) & 63,
              Math.min(59, (time & 31) * 2))
          .toInstant(ZoneOffset.UTC);
    } catch (DateTimeException e) {
      return null;
    }
  }

  // ---- files

  @Override
  public List<Run> data(Node file) throws IOException {
    long first = (Long) file.ref();
    if (file.size() == 0) {
      return List.of();
    }
    return table.chain(first, file.size(), "file at cluster " + first);
  }

  @Override
  public String readLink(Node link) throws FilesException {
    throw new FilesException(where + ": FAT has no symlinks");
  }
}
