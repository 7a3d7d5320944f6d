package dev.thaw.volume;

/**
 * A byte range of an image: {@code length} bytes from {@code offset}.
 *
 * @param offset first byte, within the image
 * @param length bytes, positive
 */
public record Extent(long offset, long length) {
  public Extent {
    if (offset < 0 || length <= 0 || offset > Long.MAX_VALUE - length) {
      throw new IllegalArgumentException("bad extent: " + length + " bytes at " + offset);
    }
  }

  /** The first byte after this extent. */
  public long end() {
    return offset + length;
  }
}
