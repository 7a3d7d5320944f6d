package dev.thaw.files;

import static dev.thaw.volume.Bytes.u16;
import static dev.thaw.volume.Bytes.u32;
import static dev.thaw.volume.Bytes.u8;

import dev.thaw.volume.ByteSource;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * ext2, ext3 and ext4 read in-process, written from the kernel's on-disk format documentation
 * ({@code Documentation/filesystems/ext4/}): superblock, group descriptors (32 or 64 bytes, {@code
 * meta_bg}), inodes, extent trees and (ext2/3) indirect blocks, linear directories (an htree
 * directory is a valid linear one), fast, slow and inline symlinks, inline data, and sparse files.
 * Reads only the superblock, the descriptors of the groups whose inodes it needs, those inodes, the
 * directory blocks on a path, extent tree nodes and the file's own blocks; never the bitmaps, and
 * never the journal (like {@code debugfs -c}: a filesystem backed up while mounted reads as of its
 * last checkpoint plus what was written in place).
 *
 * <p>Every number read is checked against the superblock's bounds; extent trees are at most 5
 * levels deep with each level one less than its parent, and a file's mapping is bounded by its
 * size, so a hostile image ends in a {@link FilesException}, never a loop. Thread-safe.
 */
final class Ext4 implements FileTree {
  static final int ROOT = 2;
  private static final long INCOMPAT_COMPRESSION = 0x1;
  private static final long INCOMPAT_JOURNAL_DEV = 0x8;
  private static final long INCOMPAT_META_BG = 0x10;
  private static final long INCOMPAT_64BIT = 0x80;
  private static final long INCOMPAT_DIRDATA = 0x1000;
  private static final long RO_COMPAT_SPARSE_SUPER = 0x1;
  private static final long COMPAT_SPARSE_SUPER2 = 0x200;
  private static final long FL_ENCRYPT = 0x800;
  private static final long FL_EXTENTS = 0x80000;
  private static final long FL_INLINE_DATA = 0x10000000L;
  private static final int EXTENT_MAGIC = 0xf30a;
  private static final int MAX_DEPTH = 5;

  /** Directories and symlinks larger than this are refused: no real one comes near. */
  private static final long MAX_DIR_BYTES = 1L << 30;

  /** A filesystem with a feature this reader does not know; debugfs may. */
  static final class Unsupported extends FilesException {
    private static final long serialVersionUID = 1L;

    Unsupported(String message) {
      super(message);
    }
  }

  private final ByteSource dev;
  private final String type;
  private final String where;
  private final int blockSize;
  private final long blocksCount;
  private final long inodesCount;
  private final long inodesPerGroup;
  private final long blocksPerGroup;
  private final int inodeSize;
  private final int descSize;
  private final long firstDataBlock;
  private final long groupCount;
  private final boolean metaBg;
  private final long firstMetaBg;
  private final boolean sparseSuper;
  private final long[] backupGroups;

  /** Group → first block of its inode table: one descriptor read per group. */
  private final Map<Long, Long> inodeTables = new ConcurrentHashMap<>();

  private Ext4(ByteSource dev, String type, String where, byte[] sb) throws FilesException {
    this.dev = dev;
    this.type = type;
    this.where = where;
    if (u16(sb, 56) != 0xef53) {
      throw damaged("no ext2/3/4 superblock");
    }
    long logBlock = u32(sb, 24);
    if (logBlock > 6) {
      throw damaged("block size 2^" + (10 + logBlock) + " bytes");
    }
    blockSize = 1024 << logBlock;
    long incompat = u32(sb, 96);
    if ((incompat & INCOMPAT_COMPRESSION) != 0 || (incompat & INCOMPAT_DIRDATA) != 0) {
      throw new Unsupported(
          where + ": ext4 with compression or dirdata, which thaw does not read in-process");
    }
    if ((incompat & INCOMPAT_JOURNAL_DEV) != 0) {
      throw new FilesException(where + " is an external ext4 journal, not a filesystem");
    }
    boolean is64 = (incompat & INCOMPAT_64BIT) != 0;
    inodesCount = u32(sb, 0);
    blocksCount = u32(sb, 4) | (is64 ? u32(sb, 0x150) << 32 : 0);
    firstDataBlock = u32(sb, 20);
    blocksPerGroup = u32(sb, 32);
    inodesPerGroup = u32(sb, 40);
    inodeSize = u32(sb, 76) == 0 ? 128 : u16(sb, 88);
    descSize = is64 ? u16(sb, 254) : 32;
    if (inodeSize < 128 || inodeSize > blockSize || Integer.bitCount(inodeSize) != 1) {
      throw damaged("inode size " + inodeSize);
    }
    if (descSize < 32 || descSize > blockSize || Integer.bitCount(descSize) != 1) {
      throw damaged("group descriptor size " + descSize);
    }
    if (blocksPerGroup == 0
        || inodesPerGroup == 0
        || inodesPerGroup > 8L * blockSize
        || firstDataBlock >= blocksCount
        || blocksCount > (Long.MAX_VALUE / blockSize)) {
      throw damaged(
          "impossible geometry ("
              + blocksCount
              + " blocks, "
              + blocksPerGroup
              + " per group, "
              + inodesPerGroup
              + " inodes per group)");
    }
    groupCount = (blocksCount - firstDataBlock + blocksPerGroup - 1) / blocksPerGroup;
    if (inodesCount > groupCount * inodesPerGroup || inodesCount < ROOT) {
      throw damaged(inodesCount + " inodes in " + groupCount + " groups of " + inodesPerGroup);
    }
    metaBg = (incompat & INCOMPAT_META_BG) != 0;
    firstMetaBg = u32(sb, 0x104);
    sparseSuper = (u32(sb, 100) & RO_COMPAT_SPARSE_SUPER) != 0;
    backupGroups =
        (u32(sb, 92) & COMPAT_SPARSE_SUPER2) != 0
            ? new long[] {u32(sb, 0x24c), u32(sb, 0x250)}
            : null;
  }

  /**
   * Opens the filesystem in {@code dev}.
   *
   * @param type its type as probed ({@code ext2}, {@code ext3}, {@code ext4})
   * @param where the volume's name, for messages
   */
  static Ext4 open(ByteSource dev, String type, String where) throws IOException {
    if (dev.size() < 2048) {
      throw new FilesException(where + ": too small for ext2/3/4");
    }
    return new Ext4(dev, type, where, dev.read(1024, 1024));
  }

  @Override
  public String type() {
    return type;
  }

  private FilesException damaged(String what) {
    return new FilesException(where + ": damaged " + type + " filesystem: " + what);
  }

  private long blockOffset(long block, String what) throws FilesException {
    if (block < firstDataBlock || block >= blocksCount) {
      throw damaged(
          what + " at block " + block + ", outside the filesystem's " + blocksCount + " blocks");
    }
    return block * blockSize;
  }

  // ---- groups and inodes

  /** Whether group {@code g} holds a superblock backup (and so descriptors after it). */
  private boolean hasSuper(long g) {
    if (g <= 1) {
      return true;
    }
    if (backupGroups != null) {
      return g == backupGroups[0] || g == backupGroups[1];
    }
    if (!sparseSuper) {
      return true;
    }
    for (long b : new long[] {3, 5, 7}) {
      long p = b;
      while (p < g) {
        p *= b;
      }
      if (p == g) {
        return true;
      }
    }
    return false;
  }

  /** The block holding group {@code g}'s descriptor. */
  private long descriptorBlock(long g) {
    long perBlock = blockSize / descSize;
    long mg = g / perBlock;
    if (!metaBg || mg < firstMetaBg) {
      return firstDataBlock + 1 + mg;
    }
    long first =
        mg * perBlock; // meta_bg: in the first group of its meta group (backups in the 2nd and
    // last)
    return firstDataBlock + first * blocksPerGroup + (hasSuper(first) ? 1 : 0);
  }

  private long inodeTable(long g) throws IOException {
    Long t = inodeTables.get(g);
    if (t != null) {
      return t;
    }
    long perBlock = blockSize / descSize;
    byte[] d =
        dev.read(
            blockOffset(descriptorBlock(g), "group descriptor " + g) + (g % perBlock) * descSize,
            descSize);
    long table = u32(d, 8) | (descSize >= 64 ? u32(d, 0x28) << 32 : 0);
    long tableBlocks = (inodesPerGroup * inodeSize + blockSize - 1) / blockSize;
    if (table < firstDataBlock || table > blocksCount - tableBlocks) {
      throw damaged("inode table of group " + g + " at block " + table);
    }
    inodeTables.put(g, table);
    return table;
  }

  /** Inode {@code ino} as a node. */
  Node inode(long ino) throws IOException {
    if (ino < 1 || ino > inodesCount) {
      throw damaged("inode number " + ino + " (the filesystem has " + inodesCount + ")");
    }
    long g = (ino - 1) / inodesPerGroup;
    long i = (ino - 1) % inodesPerGroup;
    byte[] raw = dev.read(inodeTable(g) * blockSize + i * inodeSize, inodeSize);
    int mode = u16(raw, 0);
    Entry.Kind kind =
        switch (mode & 0170000) {
          case 0100000 -> Entry.Kind.FILE;
          case 0040000 -> Entry.Kind.DIRECTORY;
          case 0120000 -> Entry.Kind.SYMLINK;
          default -> Entry.Kind.OTHER;
        };
    long uid = u16(raw, 2) | (long) u16(raw, 0x78) << 16;
    long gid = u16(raw, 0x18) | (long) u16(raw, 0x7a) << 16;
    long size =
        u32(raw, 4)
            | (kind == Entry.Kind.FILE || kind == Entry.Kind.DIRECTORY ? u32(raw, 0x6c) << 32 : 0);
    if (size < 0) {
      throw damaged("inode " + ino + " has size " + Long.toUnsignedString(size));
    }
    int extra = inodeSize > 128 ? u16(raw, 0x80) : 0;
    return new Node(
        ino,
        kind,
        mode & 07777,
        uid,
        gid,
        size,
        time(raw, 0x10, 0x88, extra),
        time(raw, 0x08, 0x8c, extra),
        raw);
  }

  /**
   * A timestamp: 32 signed bits of seconds, plus epoch bits and nanoseconds where the inode has
   * room.
   */
  private static Instant time(byte[] raw, int at, int extraAt, int extraSize) {
    long sec = (int) u32(raw, at);
    long nanos = 0;
    if (128 + extraSize >= extraAt + 4 && raw.length >= extraAt + 4) {
      long x = u32(raw, extraAt);
      sec += (x & 3) << 32;
      nanos = Math.min(999_999_999, x >>> 2);
    }
    return Instant.ofEpochSecond(sec, nanos);
  }

  private static byte[] raw(Node n) {
    return (byte[]) n.ref();
  }

  private static long flags(Node n) {
    return u32(raw(n), 0x20);
  }

  @Override
  public Node root() throws IOException {
    Node r = inode(ROOT);
    if (r.kind() != Entry.Kind.DIRECTORY) {
      throw damaged("the root inode is not a directory");
    }
    return r;
  }

  // ---- data

  @Override
  public List<Run> data(Node n) throws IOException {
    long flags = flags(n);
    if ((flags & FL_ENCRYPT) != 0) {
      throw new FilesException(
          where + ": inode " + n.id() + " is encrypted (fscrypt); thaw cannot read it");
    }
    byte[] raw = raw(n);
    if ((flags & FL_INLINE_DATA) != 0) {
      return inline(n);
    }
    long nblocks = (n.size() + blockSize - 1) / blockSize;
    Runs runs = new Runs(n.size());
    if ((flags & FL_EXTENTS) != 0) {
      extents(n.id(), raw, 0x28, 60, -1, runs);
    } else {
      for (int i = 0; i < 15; i++) {
        long first = i < 12 ? i : indirectStart(i - 11);
        if (first >= nblocks) {
          break;
        }
        mapIndirect(n.id(), u32(raw, 0x28 + 4 * i), i < 12 ? 0 : i - 11, first, nblocks, runs);
      }
    }
    return runs.list;
  }

  /** The first logical block a level-{@code level} indirect pointer of the inode maps. */
  private long indirectStart(int level) {
    long per = blockSize / 4;
    long start = 12;
    for (int l = 1; l < level; l++) {
      start += pow(per, l);
    }
    return start;
  }

  private static long pow(long b, int e) {
    long r = 1;
    for (int i = 0; i < e; i++) {
      r *= b;
    }
    return r;
  }

  private void mapIndirect(long ino, long block, int level, long first, long nblocks, Runs runs)
      throws IOException {
    if (block == 0 || first >= nblocks) {
      return; // a hole
    }
    if (level == 0) {
      runs.add(first * blockSize, blockOffset(block, "data of inode " + ino), blockSize);
      return;
    }
    byte[] b = dev.read(blockOffset(block, "indirect block of inode " + ino), blockSize);
    long per = pow(blockSize / 4, level - 1);
    for (int i = 0; i < blockSize / 4; i++) {
      long l = first + i * per;
      if (l >= nblocks) {
        break;
      }
      mapIndirect(ino, u32(b, 4 * i), level - 1, l, nblocks, runs);
    }
  }

  /**
   * Maps the extent tree node at {@code node[off, off + len)}.
   *
   * @param depth the depth its parent expects, -1 for the root in the inode
   */
  private void extents(long ino, byte[] node, int off, int len, int depth, Runs runs)
      throws IOException {
    int entries = u16(node, off + 2);
    int max = u16(node, off + 4);
    int d = u16(node, off + 6);
    if (u16(node, off) != EXTENT_MAGIC
        || entries > max
        || 12 + 12L * max > len
        || d > MAX_DEPTH
        || (depth >= 0 && d != depth)) {
      throw damaged("extent tree node of inode " + ino);
    }
    for (int e = 0; e < entries; e++) {
      int at = off + 12 + 12 * e;
      long logical = u32(node, at);
      if (d == 0) {
        int count = u16(node, at + 4);
        long start = u32(node, at + 8) | (long) u16(node, at + 6) << 32;
        if (count > 32768) {
          continue; // unwritten (preallocated): reads as zeros
        }
        if (count == 0) {
          continue;
        }
        if (start + count > blocksCount) {
          throw damaged(
              "extent of inode " + ino + " at block " + start + " past the filesystem's end");
        }
        runs.add(
            logical * blockSize,
            blockOffset(start, "extent of inode " + ino),
            (long) count * blockSize);
      } else {
        long child = u32(node, at + 4) | (long) u16(node, at + 8) << 32;
        if (logical * blockSize >= runs.size) {
          break;
        }
        byte[] b = dev.read(blockOffset(child, "extent tree node of inode " + ino), blockSize);
        extents(ino, b, 0, blockSize, d - 1, runs);
      }
      if (runs.full) {
        break;
      }
    }
  }

  /**
   * Runs in file order, merged when contiguous, cut at the file's size; out-of-order runs refused.
   */
  private final class Runs {
    final long size;
    final List<Run> list = new ArrayList<>();
    long end; // file offset past the last run
    boolean full;

    Runs(long size) {
      this.size = size;
    }

    void add(long fileOffset, long volumeOffset, long length) throws FilesException {
      if (fileOffset >= size) {
        full = true;
        return;
      }
      if (fileOffset < end) {
        throw damaged("a file's blocks map file offset " + fileOffset + " twice");
      }
      length = Math.min(length, size - fileOffset);
      Run last = list.isEmpty() ? null : list.get(list.size() - 1);
      if (last != null
          && last.fileOffset() + last.length() == fileOffset
          && last.volumeOffset() + last.length() == volumeOffset) {
        list.set(
            list.size() - 1,
            new Run(last.fileOffset(), last.volumeOffset(), last.length() + length, null));
      } else {
        list.add(new Run(fileOffset, volumeOffset, length, null));
      }
      end = fileOffset + length;
    }
  }

  /** The data of an inode with inline data: i_block, then the {@code system.data} attribute. */
  private List<Run> inline(Node n) throws FilesException {
    byte[] raw = raw(n);
    byte[] head = Arrays.copyOfRange(raw, 0x28, 0x28 + 60);
    byte[] rest = inlineXattr(n);
    byte[] all = new byte[60 + rest.length];
    System.arraycopy(head, 0, all, 0, 60);
    System.arraycopy(rest, 0, all, 60, rest.length);
    if (n.size() > all.length) {
      throw damaged(
          "inode " + n.id() + " has " + n.size() + " bytes of inline data, room for " + all.length);
    }
    return n.size() == 0
        ? List.of()
        : List.of(new Run(0, -1, n.size(), Arrays.copyOf(all, (int) n.size())));
  }

  /** The value of the in-inode extended attribute {@code system.data}, or none. */
  private byte[] inlineXattr(Node n) throws FilesException {
    byte[] raw = raw(n);
    int extra = inodeSize > 128 ? u16(raw, 0x80) : 0;
    int start = 128 + extra;
    if (start + 4 > inodeSize || u32(raw, start) != 0xea020000L) {
      return new byte[0];
    }
    int base = start + 4;
    int at = base;
    while (at + 16 <= inodeSize && u32(raw, at) != 0) {
      int nameLen = u8(raw, at);
      int index = u8(raw, at + 1);
      int valueOffs = u16(raw, at + 2);
      long valueSize = u32(raw, at + 8);
      if (at + 16 + nameLen > inodeSize) {
        break;
      }
      String name = new String(raw, at + 16, nameLen, StandardCharsets.ISO_8859_1);
      if (index == 7 && name.equals("data")) {
        if (base + valueOffs + valueSize > inodeSize) {
          throw damaged("inline data of inode " + n.id() + " past the inode's end");
        }
        return Arrays.copyOfRange(raw, base + valueOffs, (int) (base + valueOffs + valueSize));
      }
      at += (16 + nameLen + 3) & ~3;
    }
    return new byte[0];
  }

  /** The whole content of a directory or symlink (bounded), holes as zeros. */
  private byte[] contents(Node n, long limit) throws IOException {
    if (n.size() > limit) {
      throw damaged(
          "inode "
              + n.id()
              + " claims "
              + n.size()
              + " bytes for a "
              + n.kind().name().toLowerCase(java.util.Locale.ROOT));
    }
    byte[] out = new byte[(int) n.size()];
    for (Run r : data(n)) {
      if (r.literal() != null) {
        System.arraycopy(r.literal(), 0, out, (int) r.fileOffset(), (int) r.length());
      } else {
        dev.read(r.volumeOffset(), out, (int) r.fileOffset(), (int) r.length());
      }
    }
    return out;
  }

  // ---- directories and symlinks

  @Override
  public List<Named> list(Node dir) throws IOException {
    List<Named> out = new ArrayList<>();
    if ((flags(dir) & FL_INLINE_DATA)
        != 0) { // the parent's number, then entries; more in system.data
      byte[] raw = raw(dir);
      entries(dir, Arrays.copyOfRange(raw, 0x28 + 4, 0x28 + 60), out);
      byte[] rest = inlineXattr(dir);
      if (rest.length > 0) {
        entries(dir, rest, out);
      }
      return out;
    }
    if (dir.size() > MAX_DIR_BYTES) {
      throw damaged("inode " + dir.id() + " claims " + dir.size() + " bytes for a directory");
    }
    byte[] block = new byte[blockSize]; // block by block: a directory is never held whole
    for (Run r : data(dir)) {
      for (long off = 0; off + blockSize <= r.length(); off += blockSize) {
        if (r.literal() != null) {
          System.arraycopy(r.literal(), (int) off, block, 0, blockSize);
        } else {
          dev.read(r.volumeOffset() + off, block, 0, blockSize);
        }
        entries(dir, block, out);
      }
    }
    return out;
  }

  /** The entries of one directory block (or inline area). */
  private void entries(Node dir, byte[] block, List<Named> out) throws IOException {
    int pos = 0;
    while (pos + 8 <= block.length) {
      long ino = u32(block, pos);
      int recLen = u16(block, pos + 4);
      int nameLen = u8(block, pos + 6);
      if (recLen < 8 || recLen % 4 != 0 || pos + recLen > block.length) {
        if (ino == 0 && recLen == 0 && block.length - pos < 12) {
          break; // an inline area's tail
        }
        throw damaged(
            "directory inode " + dir.id() + " has an entry of length " + recLen + " at " + pos);
      }
      if (ino != 0 && nameLen > 0 && 8 + nameLen <= recLen) {
        String name = new String(block, pos + 8, nameLen, StandardCharsets.UTF_8);
        if (!name.equals(".") && !name.equals("..")) {
          if (ino > inodesCount) {
            throw damaged("directory inode " + dir.id() + " names inode " + ino + " for " + name);
          }
          if (out.size() == MAX_ENTRIES) {
            throw new FilesException(
                where
                    + ": directory inode "
                    + dir.id()
                    + " holds more than "
                    + MAX_ENTRIES
                    + " files and directories, more than thaw lists in one directory");
          }
          out.add(new Named(name, ino, null));
        }
      }
      pos += recLen;
    }
  }

  @Override
  public Node node(Named entry) throws IOException {
    return inode(entry.number());
  }

  @Override
  public String readLink(Node link) throws IOException {
    byte[] raw = raw(link);
    long flags = flags(link);
    byte[] target;
    // fast symlink, as the kernel tells: no inline data and no blocks but an attribute block
    long eaBlocks = u32(raw, 0x68) != 0 ? blockSize / 512 : 0;
    if ((flags & FL_INLINE_DATA) == 0 && u32(raw, 0x1c) - eaBlocks == 0 && link.size() < 60) {
      target = Arrays.copyOfRange(raw, 0x28, 0x28 + (int) link.size());
    } else {
      target = contents(link, 65536);
    }
    return new String(target, StandardCharsets.UTF_8);
  }
}
