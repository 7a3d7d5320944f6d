package dev.thaw.files;

import static dev.thaw.volume.Bytes.u16;
import static dev.thaw.volume.Bytes.u32;

import dev.thaw.volume.ByteSource;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A file allocation table and the cluster heap it maps, as FAT12/16/32 and exFAT share them:
 * entries of 12, 16 or 32 bits, clusters numbered from 2, values from the top eight of the entry's
 * range ending a chain. Turns chains into runs of the volume. Every cluster is checked against the
 * heap, a chain is bounded by the bytes asked for (or a directory's maximum), and a chain that
 * comes back to a cluster it holds is refused, so a damaged or hostile table ends in a {@link
 * FilesException}, never a loop. Reads the table in 4 KiB blocks and keeps at most 16 MiB of them.
 * Thread-safe.
 */
final class FatTable {
  private static final int BLOCK = 4096;
  private static final int MAX_BLOCKS = 4096;

  private final ByteSource dev;
  private final String damaged;
  private final long tableOffset;
  private final long tableEnd;
  private final int bits;
  private final long mask;
  private final long endMark;
  private final long clusterCount;
  private final long heapOffset;
  private final long clusterSize;

  /** Table blocks read, by offset: a chain walks them in order. */
  private final Map<Long, byte[]> blocks = new ConcurrentHashMap<>();

  /**
   * @param damaged what a message about damage starts with ({@code "a.img.p1: damaged FAT
   *     filesystem: "})
   * @param tableOffset where the table starts in the volume
   * @param tableBytes its length; it must hold {@code clusterCount + 2} entries
   * @param bits the width of an entry: 12, 16 or 32
   * @param mask the bits of an entry that hold a cluster number ({@code 0x0fffffff} for FAT32)
   * @param heapOffset where cluster 2 starts in the volume
   */
  FatTable(
      ByteSource dev,
      String damaged,
      long tableOffset,
      long tableBytes,
      int bits,
      long mask,
      long clusterCount,
      long heapOffset,
      long clusterSize) {
    this.dev = dev;
    this.damaged = damaged;
    this.tableOffset = tableOffset;
    this.tableEnd = tableOffset + tableBytes;
    this.bits = bits;
    this.mask = mask;
    this.endMark = mask & ~7L;
    this.clusterCount = clusterCount;
    this.heapOffset = heapOffset;
    this.clusterSize = clusterSize;
  }

  long clusterSize() {
    return clusterSize;
  }

  /** Whether {@code cluster} is one of the heap's. */
  boolean inHeap(long cluster) {
    return cluster >= 2 && cluster < clusterCount + 2;
  }

  private FilesException damaged(String what) {
    return new FilesException(damaged + what);
  }

  /** The value of the table's entry for {@code cluster}, a cluster of the heap. */
  private long next(long cluster) throws IOException {
    long at = tableOffset + (bits == 12 ? cluster + cluster / 2 : cluster * (bits / 8));
    long block = at - (at - tableOffset) % BLOCK;
    byte[] b = block(block);
    int i = (int) (at - block);
    if (bits == 12) {
      int lo = b[i] & 0xff;
      int hi = i + 1 < b.length ? b[i + 1] & 0xff : block(block + BLOCK)[0] & 0xff;
      int v = lo | hi << 8;
      return (cluster & 1) == 0 ? v & 0xfff : v >>> 4;
    }
    return (bits == 16 ? u16(b, i) : u32(b, i)) & mask;
  }

  private byte[] block(long offset) throws IOException {
    byte[] b = blocks.get(offset);
    if (b == null) {
      if (blocks.size() > MAX_BLOCKS) { // 16 MiB: the table of a huge volume is not kept whole
        blocks.clear();
      }
      b = dev.read(offset, (int) Math.min(BLOCK, tableEnd - offset));
      blocks.put(offset, b);
    }
    return b;
  }

  /**
   * The runs of the chain from {@code first} that hold {@code length} bytes, in file order; a chain
   * that ends, leaves the heap or comes back to itself before is damaged.
   *
   * @param what the file or directory, for messages
   */
  List<FileTree.Run> chain(long first, long length, String what) throws IOException {
    return walk(first, length, -1, what);
  }

  /**
   * The runs of the chain from {@code first} up to its end mark (a directory, which has no size),
   * at most {@code maxBytes} long.
   */
  List<FileTree.Run> wholeChain(long first, long maxBytes, String what) throws IOException {
    return walk(first, -1, maxBytes, what);
  }

  /**
   * The run of {@code length} bytes from cluster {@code first} on, clusters that follow each other
   * (exFAT's NoFatChain).
   */
  List<FileTree.Run> contiguous(long first, long length, String what) throws FilesException {
    long clusters = (length + clusterSize - 1) / clusterSize;
    if (!inHeap(first) || clusters > clusterCount + 2 - first) {
      throw damaged(
          what
              + ": its "
              + clusters
              + " clusters from cluster "
              + first
              + " are outside the cluster heap ("
              + clusterCount
              + " clusters)");
    }
    return length == 0 ? List.of() : List.of(new FileTree.Run(0, offset(first), length, null));
  }

  private long offset(long cluster) {
    return heapOffset + (cluster - 2) * clusterSize;
  }

  /**
   * {@code length} bytes of the chain, or (length -1) the chain to its end mark within {@code
   * maxBytes}.
   */
  private List<FileTree.Run> walk(long first, long length, long maxBytes, String what)
      throws IOException {
    boolean toEnd = length < 0;
    long need = toEnd ? Long.MAX_VALUE : (length + clusterSize - 1) / clusterSize;
    long maxClusters = toEnd ? Math.max(1, (maxBytes + clusterSize - 1) / clusterSize) : need;
    List<FileTree.Run> runs = new ArrayList<>();
    TreeMap<Long, Long> held =
        new TreeMap<>(); // the chain's clusters so far: first -> end of each range
    long rangeStart = -1;
    long c = first;
    long fileOffset = 0;
    for (long n = 0; n < need; n++) {
      if (!inHeap(c)) {
        throw damaged(
            what
                + ": cluster "
                + c
                + " in its chain is outside the data area"
                + (c >= endMark ? " (the chain ends before its size)" : ""));
      }
      Map.Entry<Long, Long> range = held.floorEntry(c);
      if (range != null && c < range.getValue()) {
        throw damaged(what + ": its chain runs into itself at cluster " + c);
      }
      if (n >= maxClusters) {
        throw damaged(what + ": a chain longer than any directory (" + maxBytes + " bytes)");
      }
      if (rangeStart >= 0 && held.get(rangeStart) == c) {
        held.put(rangeStart, c + 1);
      } else {
        rangeStart = c;
        held.put(c, c + 1);
      }
      long len = toEnd ? clusterSize : Math.min(clusterSize, length - fileOffset);
      long vol = offset(c);
      FileTree.Run last = runs.isEmpty() ? null : runs.get(runs.size() - 1);
      if (last != null && last.volumeOffset() + last.length() == vol) {
        runs.set(
            runs.size() - 1,
            new FileTree.Run(last.fileOffset(), last.volumeOffset(), last.length() + len, null));
      } else {
        runs.add(new FileTree.Run(fileOffset, vol, len, null));
      }
      fileOffset += len;
      if (n + 1 < need) {
        c = next(c);
        if (toEnd && c >= endMark) {
          break;
        }
      }
    }
    return runs;
  }
}
