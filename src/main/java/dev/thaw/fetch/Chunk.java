package dev.thaw.fetch;

import dev.thaw.format.Digest;
import java.util.Arrays;

/**
 * A verified chunk's plain data. Immutable by contract: the array is shared between every reader
 * of the chunk and must never be written to. Zero chunks carry no array.
 */
public final class Chunk {
  private final Digest digest;
  private final byte[] data;
  private final int length;

  private Chunk(Digest digest, byte[] data, int length) {
    this.digest = digest;
    this.data = data;
    this.length = length;
  }

  static Chunk of(Digest digest, byte[] data) {
    return new Chunk(digest, data, data.length);
  }

  static Chunk zero(Digest digest, int length) {
    return new Chunk(digest, null, length);
  }

  public Digest digest() {
    return digest;
  }

  public int length() {
    return length;
  }

  /** Whether this chunk is all zeros (and was never fetched). */
  public boolean isZero() {
    return data == null;
  }

  /**
   * The data; shared, do not modify. For a zero chunk, null.
   */
  public byte[] data() {
    return data;
  }

  /** Copies {@code len} bytes from {@code from} within the chunk into {@code dst}. */
  public void copyTo(int from, byte[] dst, int dstOff, int len) {
    if (from < 0 || len < 0 || from + len > length) {
      throw new IndexOutOfBoundsException("chunk range " + from + "+" + len + " of " + length);
    }
    if (data == null) {
      Arrays.fill(dst, dstOff, dstOff + len, (byte) 0);
    } else {
      System.arraycopy(data, from, dst, dstOff, len);
    }
  }

  @Override
  public String toString() {
    return "Chunk[" + digest.hex() + ", " + length + (data == null ? " zero]" : "]");
  }
}
