package dev.thaw.buffer;

import java.util.ArrayList;
import java.util.List;

/**
 * Byte arrays for chunk data, reused: a chunk read, decoded and written or cached takes arrays from
 * here and gives them back when its last {@link Buffer} reference goes, so that a restore or a
 * mount moving gigabytes allocates (and the kernel zeroes, and the garbage collector copies) almost
 * nothing per chunk.
 *
 * <p>An array is handed out again only after the last reference to the buffer that held it was
 * released. Free arrays are kept up to a bound in bytes, the least recently returned dropped first.
 * A request takes the smallest free array that fits and is at most four times the size it would get
 * new (a compressed blob may borrow a chunk-sized array for the moment it lives, but a small chunk
 * never pins a large one); new arrays are rounded up a little ({@link #capacityFor}), so that
 * chunks of nearly the same size, and a chunk and its blob, share arrays. Thread-safe.
 */
public final class BufferPool {
  /** Room a new array has beyond the length asked for: a blob's header, and a GCM tag. */
  static final int SLACK = 64;

  private final long maxFreeBytes;

  /** Free arrays, oldest first; guarded by this. Few (maxFreeBytes / chunk size), so scanned. */
  private final List<byte[]> free = new ArrayList<>();

  private long freeBytes;
  private long taken;
  private long reused;

  /**
   * @param maxFreeBytes free arrays kept for reuse, in bytes at most
   */
  public BufferPool(long maxFreeBytes) {
    this.maxFreeBytes = Math.max(0, maxFreeBytes);
  }

  /**
   * A buffer of {@code length} bytes (offset 0) for the caller, holding one reference. Its array
   * may be longer, and holds whatever it held before: the caller fills it.
   */
  public Buffer take(int length) {
    if (length < 0) {
      throw new IllegalArgumentException("negative length " + length);
    }
    int fresh = capacityFor(length);
    byte[] a = null;
    synchronized (this) {
      taken++;
      int best = -1;
      for (int i = free.size() - 1;
          i >= 0;
          i--) { // the most recently returned first: still in the CPU's caches
        int c = free.get(i).length;
        if (c >= length && c <= 4L * fresh && (best < 0 || c < free.get(best).length)) {
          best = i;
        }
      }
      if (best >= 0) {
        a = free.remove(best);
        freeBytes -= a.length;
        reused++;
      }
    }
    return new Buffer(this, a != null ? a : new byte[fresh], length);
  }

  /**
   * The array length a new buffer of {@code length} bytes gets: {@link #SLACK} bytes more, rounded
   * up to 1/64 of the size (at least 4 KiB). A chunk of 4 MiB and the blob that holds it (its
   * header, and a tag moved behind it) get arrays of one size, which serve either.
   */
  public static int capacityFor(int length) {
    long granule = Math.max(4096, Integer.highestOneBit(Math.max(1, length)) >> 6);
    long c = (length + SLACK + granule - 1) / granule * granule;
    return (int) Math.min(c, Integer.MAX_VALUE - 16);
  }

  /** Takes back an array no reference reaches any more. */
  void recycle(byte[] a) {
    synchronized (this) {
      if (a.length > maxFreeBytes) {
        return;
      }
      free.add(a);
      freeBytes += a.length;
      while (freeBytes > maxFreeBytes) {
        freeBytes -= free.remove(0).length;
      }
    }
  }

  /** Buffers handed out so far. */
  public synchronized long taken() {
    return taken;
  }

  /** Of those, how many got a reused array. */
  public synchronized long reused() {
    return reused;
  }

  /** Bytes of free arrays kept now. */
  public synchronized long freeBytes() {
    return freeBytes;
  }
}
