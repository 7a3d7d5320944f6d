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
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * FAT12, FAT16 and FAT32 read in-process, written from Microsoft's FAT specification (the BPB,
 * the FAT type from the cluster count, cluster chains, 32-byte directory entries, VFAT long names
 * with their checksum): directories and files with their modification and access times (FAT
 * keeps local time without a zone; thaw reads it as UTC, as Linux mounts it by default).
 * FAT has no owners or modes: directories get {@code 0755}, files {@code 0644}, without write
 * bits when read-only. Reads the boot sector, the FAT sectors of the chains it follows, the
 * directories on a path and the file's clusters.
 *
 * <p>Chains are bounded by the cluster count and by what a file's size needs, clusters checked
 * against the data area, so a damaged or hostile FAT ends in a {@link FilesException}, never a
 * loop. Thread-safe.
 */
final class Fat implements FileTree {
  /** Directories are at most 65536 entries long (the specification's limit). */
  private static final long MAX_DIR_BYTES = 65536L * 32;
  private static final int FAT_BLOCK = 4096;
  private static final Charset OEM = oem();

  private final ByteSource dev;
  private final String where;
  private final int bytesPerSector;
  private final long clusterSize;
  private final long fatOffset;
  private final long rootOffset; // FAT12/16: the fixed root directory
  private final long rootBytes;
  private final long dataOffset;
  private final long clusterCount;
  private final int bits;
  private final long rootCluster;
  /** FAT blocks read, by offset: a chain walks them in order. */
  private final Map<Long, byte[]> fatBlocks = new ConcurrentHashMap<>();

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
    if (bytesPerSector < 512 || bytesPerSector > 4096 || Integer.bitCount(bytesPerSector) != 1
        || spc == 0 || Integer.bitCount(spc) != 1 || reserved == 0 || fats == 0 || fatSize == 0) {
      throw damaged("impossible boot sector (" + bytesPerSector + " bytes per sector, " + spc
          + " sectors per cluster, " + reserved + " reserved, " + fats + " FATs of " + fatSize + " sectors)");
    }
    clusterSize = (long) spc * bytesPerSector;
    long rootSectors = (rootEntries * 32 + bytesPerSector - 1) / bytesPerSector;
    long firstData = reserved + fats * fatSize + rootSectors;
    if (total <= firstData || total * bytesPerSector > dev.size()) {
      throw damaged(total + " sectors of " + bytesPerSector + " bytes, data from sector " + firstData + ", in a "
          + dev.size() + "-byte volume");
    }
    clusterCount = (total - firstData) / spc;
    bits = clusterCount < 4085 ? 12 : clusterCount < 65525 ? 16 : 32;
    fatOffset = reserved * bytesPerSector;
    if (fatSize * bytesPerSector * 8 < (clusterCount + 2) * bits) {
      throw damaged("a FAT of " + fatSize + " sectors cannot hold " + clusterCount + " clusters");
    }
    rootOffset = (reserved + fats * fatSize) * bytesPerSector;
    rootBytes = rootSectors * bytesPerSector;
    dataOffset = firstData * bytesPerSector;
    rootCluster = bits == 32 ? u32(bs, 44) & 0x0fffffffL : 0;
    if (bits == 32 ? rootCluster < 2 || rootCluster >= clusterCount + 2 : rootEntries == 0) {
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

  // ---- the FAT

  private long next(long cluster) throws IOException {
    long byteOff = bits == 12 ? cluster + cluster / 2 : cluster * (bits / 8);
    long at = fatOffset + byteOff;
    long block = at - at % FAT_BLOCK;
    byte[] b = fatBlock(block);
    int i = (int) (at - block);
    if (bits == 12) {
      int lo = b[i] & 0xff;
      int hi = i + 1 < b.length ? b[i + 1] & 0xff : fatBlock(block + FAT_BLOCK)[0] & 0xff;
      int v = lo | hi << 8;
      return (cluster & 1) == 0 ? v & 0xfff : v >>> 4;
    }
    return bits == 16 ? u16(b, i) : u32(b, i) & 0x0fffffffL;
  }

  private byte[] fatBlock(long offset) throws IOException {
    byte[] b = fatBlocks.get(offset);
    if (b == null) {
      if (fatBlocks.size() > 4096) { // 16 MiB: a FAT32 of a huge volume is not kept whole
        fatBlocks.clear();
      }
      b = dev.read(offset, (int) Math.min(FAT_BLOCK, dev.size() - offset));
      fatBlocks.put(offset, b);
    }
    return b;
  }

  /** The runs of the chain from {@code first} that hold {@code length} bytes (a chain that ends or loops before is damaged). */
  private List<Run> chain(long first, long length, String what) throws IOException {
    List<Run> runs = new ArrayList<>();
    long need = (length + clusterSize - 1) / clusterSize;
    long eoc = bits == 12 ? 0xff8 : bits == 16 ? 0xfff8 : 0x0ffffff8L;
    long c = first;
    long fileOffset = 0;
    java.util.BitSet seen = new java.util.BitSet();
    for (long n = 0; n < need; n++) {
      if (c >= 2 && c < clusterCount + 2 && seen.get((int) c)) {
        throw damaged(what + ": its chain runs into itself at cluster " + c);
      }
      if (c < 2 || c >= clusterCount + 2) {
        throw damaged(what + ": cluster " + c + " in its chain is outside the data area"
            + (c >= eoc ? " (the chain ends before its size)" : ""));
      }
      seen.set((int) c);
      long len = Math.min(clusterSize, length - fileOffset);
      long vol = dataOffset + (c - 2) * clusterSize;
      Run last = runs.isEmpty() ? null : runs.get(runs.size() - 1);
      if (last != null && last.volumeOffset() + last.length() == vol) {
        runs.set(runs.size() - 1, new Run(last.fileOffset(), last.volumeOffset(), last.length() + len, null));
      } else {
        runs.add(new Run(fileOffset, vol, len, null));
      }
      fileOffset += len;
      if (n + 1 < need) {
        c = next(c);
      }
    }
    return runs;
  }

  /** A directory's whole chain (it has no size): its clusters until the end mark, bounded. */
  private long chainLength(long first, String what) throws IOException {
    long eoc = bits == 12 ? 0xff8 : bits == 16 ? 0xfff8 : 0x0ffffff8L;
    long c = first;
    long n = 0;
    while (true) {
      if (c < 2 || c >= clusterCount + 2) {
        throw damaged(what + ": cluster " + c + " in its chain is outside the data area");
      }
      if (++n * clusterSize > MAX_DIR_BYTES + clusterSize) {
        throw damaged(what + ": a chain longer than any directory (a loop?)");
      }
      c = next(c);
      if (c >= eoc) {
        return n * clusterSize;
      }
    }
  }

  // ---- directories

  @Override
  public Node root() {
    return new Node(bits == 32 ? rootCluster : 0, Entry.Kind.DIRECTORY, 0755, -1, -1, 0, null, null,
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
      long len = chainLength(first, "directory at cluster " + first);
      all = new byte[(int) len];
      for (Run r : chain(first, len, "directory at cluster " + first)) {
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
      int mode = isDir ? 0755 : 0644;
      if ((attr & 0x01) != 0) {
        mode &= ~0222;
      }
      Instant mtime = time(u16(all, at + 24), u16(all, at + 22));
      Instant atime = time(u16(all, at + 18), 0);
      out.add(new Named(name, cluster, new Node(isDir ? cluster : -1 - at, isDir ? Entry.Kind.DIRECTORY : Entry.Kind.FILE,
          mode, -1, -1, size, mtime, atime, cluster)));
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

  /** A FAT date and time (local time, read as UTC); null when the date is not set or invalid. */
  private static Instant time(int date, int time) {
    if (date == 0) {
      return null;
    }
    try {
      return LocalDateTime.of(1980 + (date >>> 9), (date >>> 5) & 15, date & 31, time >>> 11, (time >>> 5) & 63,
          Math.min(59, (time & 31) * 2)).toInstant(ZoneOffset.UTC);
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
    return chain(first, file.size(), "file at cluster " + first);
  }

  @Override
  public String readLink(Node link) throws FilesException {
    throw new FilesException(where + ": FAT has no symlinks");
  }
}
