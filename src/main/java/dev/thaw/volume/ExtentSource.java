package dev.thaw.volume;

import java.io.IOException;
import java.util.List;

/**
 * The concatenation of extents of an underlying source, read as one: a partition (one extent) or a
 * logical volume (one extent per segment). A read maps to plain offset reads of the underlying
 * source. Immutable; thread-safe when the underlying source is.
 */
final class ExtentSource implements ByteSource {
  private final ByteSource base;
  private final Extent[] extents;

  /** starts[i]: offset in this source of extents[i]; starts[n]: the size. */
  private final long[] starts;

  ExtentSource(ByteSource base, List<Extent> extents) {
    this.base = base;
    this.extents = extents.toArray(new Extent[0]);
    this.starts = new long[this.extents.length + 1];
    for (int i = 0; i < this.extents.length; i++) {
      starts[i + 1] = Math.addExact(starts[i], this.extents[i].length());
    }
  }

  @Override
  public long size() {
    return starts[extents.length];
  }

  @Override
  public void read(long offset, byte[] dst, int off, int len) throws IOException {
    ByteSource.checkRange(offset, len, size());
    int i = extentAt(offset);
    while (len > 0) {
      long within = offset - starts[i];
      int n = (int) Math.min(len, extents[i].length() - within);
      base.read(extents[i].offset() + within, dst, off, n);
      offset += n;
      off += n;
      len -= n;
      i++;
    }
  }

  /** The extent that holds byte {@code offset} (binary search over the starts). */
  private int extentAt(long offset) {
    int lo = 0;
    int hi = extents.length - 1;
    while (lo < hi) {
      int mid = (lo + hi + 1) >>> 1;
      if (starts[mid] <= offset) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return lo;
  }
}
