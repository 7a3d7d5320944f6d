package dev.thaw.fetch;

import dev.thaw.buffer.Buffer;
import dev.thaw.format.Digest;
import java.util.Arrays;

/**
 * A verified chunk's plain data: {@code data()[offset(), offset() + length())}, in a pooled,
 * reference-counted {@link Buffer}. Zero chunks carry no array.
 *
 * <p>Every {@link FetchPipeline#fetch} call hands its caller one reference, whether it started the
 * fetch or joined one under way; {@link #release} gives it back once the bytes are written or
 * copied, and the array goes back to the pool when no holder is left. A caller that never releases
 * leaves the array to the garbage collector (correct, only slower); one that releases twice, or
 * reads after releasing, reads bytes another chunk owns by then: don't. The bytes are shared
 * between every holder and must never be written to. Thread-safe.
 */
public final class Chunk {
  private final Digest digest;
  private final Buffer buffer;
  private final int offset;
  private final int length;

  private Chunk(Digest digest, Buffer buffer, int offset, int length) {
    this.digest = digest;
    this.buffer = buffer;
    this.offset = offset;
    this.length = length;
  }

  /** A chunk holding the bytes of {@code buffer} (and its caller's reference). */
  static Chunk of(Digest digest, Buffer buffer) {
    return new Chunk(digest, buffer, buffer.offset(), buffer.length());
  }

  static Chunk zero(Digest digest, int length) {
    return new Chunk(digest, null, 0, length);
  }

  public Digest digest() {
    return digest;
  }

  public int length() {
    return length;
  }

  /** Whether this chunk is all zeros (and was never fetched). */
  public boolean isZero() {
    return buffer == null;
  }

  /**
   * The array holding the data at {@link #offset()}; shared, do not modify. For a zero chunk, null.
   */
  public byte[] data() {
    return buffer == null ? null : buffer.array();
  }

  /** Where the data starts in {@link #data()}. */
  public int offset() {
    return offset;
  }

  /** The memory the chunk holds (its array may be longer than its data); 0 for a zero chunk. */
  public int capacity() {
    return buffer == null ? 0 : buffer.capacity();
  }

  /** Another reference for a further holder; false once the chunk was freed (zero chunks: true). */
  public boolean retain() {
    return buffer == null || buffer.retain();
  }

  /** Gives one reference back (nothing for a zero chunk). */
  public void release() {
    if (buffer != null) {
      buffer.release();
    }
  }

  /** Adds {@code n} references, before the chunk reaches {@code n} more holders. */
  void share(int n) {
    if (buffer != null && n > 0) {
      buffer.share(n);
    }
  }

  /** Copies {@code len} bytes from {@code from} within the chunk into {@code dst}. */
  public void copyTo(int from, byte[] dst, int dstOff, int len) {
    if (from < 0 || len < 0 || from + len > length) {
      throw new IndexOutOfBoundsException("chunk range " + from + "+" + len + " of " + length);
    }
    if (buffer == null) {
      Arrays.fill(dst, dstOff, dstOff + len, (byte) 0);
    } else {
      System.arraycopy(buffer.array(), offset + from, dst, dstOff, len);
    }
  }

  /** A copy of the data (zeros for a zero chunk). */
  public byte[] toArray() {
    byte[] a = new byte[length];
    copyTo(0, a, 0, length);
    return a;
  }

  @Override
  public String toString() {
    return "Chunk[" + digest.hex() + ", " + length + (buffer == null ? " zero]" : "]");
  }
}
