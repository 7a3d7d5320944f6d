package dev.thaw.volume;

import dev.thaw.image.ImageReader;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.util.List;
import java.util.Objects;

/**
 * Random-access, read-only bytes of a known size: a disk image, a partition of it, a logical
 * volume. Implementations over an image reader, a file or an array; the volume parsers read through
 * this interface only. Implementations must allow concurrent reads unless they say otherwise.
 */
public interface ByteSource {
  /** Size in bytes. */
  long size();

  /**
   * Reads exactly {@code len} bytes at {@code offset} into {@code dst} at {@code off}.
   *
   * @throws EOFException when {@code [offset, offset + len)} is not within {@code [0, size())}
   * @throws IOException when the bytes cannot be had (a chunk that cannot be fetched, an I/O error)
   */
  void read(long offset, byte[] dst, int off, int len) throws IOException;

  /** Reads {@code len} bytes at {@code offset} into a new array. */
  default byte[] read(long offset, int len) throws IOException {
    byte[] b = new byte[len];
    read(offset, b, 0, len);
    return b;
  }

  /** The bytes {@code [offset, offset + length)} of this source as a source of their own. */
  default ByteSource slice(long offset, long length) {
    return new ExtentSource(this, List.of(new Extent(offset, length)));
  }

  /** A source over an array (not copied: the caller must not change it). */
  static ByteSource of(byte[] bytes) {
    Objects.requireNonNull(bytes);
    return new ByteSource() {
      @Override
      public long size() {
        return bytes.length;
      }

      @Override
      public void read(long offset, byte[] dst, int off, int len) throws IOException {
        checkRange(offset, len, bytes.length);
        System.arraycopy(bytes, (int) offset, dst, off, len);
      }
    };
  }

  /** A source over an open file channel (positional reads; the caller closes the channel). */
  static ByteSource of(FileChannel channel) throws IOException {
    long size = channel.size();
    return new ByteSource() {
      @Override
      public long size() {
        return size;
      }

      @Override
      public void read(long offset, byte[] dst, int off, int len) throws IOException {
        checkRange(offset, len, size);
        ByteBuffer b = ByteBuffer.wrap(dst, off, len);
        while (b.hasRemaining()) {
          if (channel.read(b, offset + b.position() - off) < 0) {
            throw new EOFException(
                "file ends at " + (offset + b.position() - off) + ", before " + size);
          }
        }
      }
    };
  }

  /**
   * A source over an open image handle: plain offset reads through the mount's cache, fetch
   * pipeline and verification. The caller closes the handle.
   */
  static ByteSource of(ImageReader.Handle handle, long size) {
    return new ByteSource() {
      @Override
      public long size() {
        return size;
      }

      @Override
      public void read(long offset, byte[] dst, int off, int len) throws IOException {
        checkRange(offset, len, size);
        while (len > 0) {
          int n = handle.read(offset, dst, off, len);
          if (n <= 0) {
            throw new EOFException("image ends at " + offset + ", before " + size);
          }
          offset += n;
          off += n;
          len -= n;
        }
      }
    };
  }

  /**
   * Throws {@link EOFException} unless {@code [offset, offset + len)} lies within {@code [0,
   * size)}; for implementations.
   */
  static void checkRange(long offset, long len, long size) throws EOFException {
    if (offset < 0 || len < 0 || offset > size || len > size - offset) {
      throw new EOFException(
          "read of " + len + " bytes at " + offset + " is outside the " + size + " bytes");
    }
  }
}
