package dev.thaw.io;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/**
 * Positional reads and writes of byte arrays in slices of {@link #SLICE} bytes. A FileChannel moves
 * a heap array through a temporary direct buffer; the JDK keeps one per thread for reuse only up to
 * {@code jdk.nio.maxCachedBufferSize} (the launcher sets 1 MiB) and allocates, zeroes and frees a
 * new one for every larger call: a 4 MiB chunk written whole costs a 4 MiB malloc, page faults and
 * a free each time. Slices keep every call on the cached buffer. Stateless.
 */
public final class FileChannels {
  /** Bytes per system call: small enough for the JDK's cached per-thread buffer. */
  static final int SLICE = 256 * 1024;

  private FileChannels() {}

  /** Writes {@code a[off, off + len)} at {@code pos}. */
  public static void write(FileChannel ch, long pos, byte[] a, int off, int len)
      throws IOException {
    int done = 0;
    while (done < len) {
      ByteBuffer b = ByteBuffer.wrap(a, off + done, Math.min(SLICE, len - done));
      while (b.hasRemaining()) {
        done += ch.write(b, pos + done);
      }
    }
  }

  /**
   * Reads {@code len} bytes at {@code pos} into {@code a[off, ...)}.
   *
   * @throws EOFException when the file ends first
   */
  public static void read(FileChannel ch, long pos, byte[] a, int off, int len) throws IOException {
    int done = 0;
    while (done < len) {
      int n = ch.read(ByteBuffer.wrap(a, off + done, Math.min(SLICE, len - done)), pos + done);
      if (n < 0) {
        throw new EOFException(
            "end of file at " + (pos + done) + ", " + (len - done) + " bytes short");
      }
      done += n;
    }
  }
}
