package dev.thaw.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;

/**
 * One client's socket: blocking reads by the connection's own thread, and writes of whole messages
 * under a lock, so that replies finished on several threads never interleave. Large buffers move in
 * slices, so that the JDK's per-thread temporary direct buffers stay small. Thread-safe for one
 * reader and many writers.
 */
final class Wire implements AutoCloseable {
  private static final int SLICE = 256 << 10;

  private final ByteChannel channel;
  private final Object writeLock = new Object();

  Wire(ByteChannel channel) {
    this.channel = channel;
  }

  /** Fills {@code b}; EOF before it is full is an {@link EOFException}. */
  void readFully(ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      if (channel.read(b) < 0) {
        throw new EOFException("the client closed the connection");
      }
    }
  }

  /** Reads {@code n} bytes. */
  ByteBuffer read(int n) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(n);
    readFully(b);
    return b.flip();
  }

  /** Reads {@code len} bytes into {@code dst} at {@code off}. */
  void readFully(byte[] dst, int off, int len) throws IOException {
    for (int done = 0; done < len; ) {
      int n = Math.min(SLICE, len - done);
      readFully(ByteBuffer.wrap(dst, off + done, n));
      done += n;
    }
  }

  /** Writes the buffers, in order, as one message that no other write interleaves. */
  void send(ByteBuffer... buffers) throws IOException {
    synchronized (writeLock) {
      for (ByteBuffer b : buffers) {
        while (b.hasRemaining()) {
          int n = Math.min(SLICE, b.remaining());
          ByteBuffer s = b.slice(b.position(), n);
          while (s.hasRemaining()) {
            channel.write(s);
          }
          b.position(b.position() + n);
        }
      }
    }
  }

  @Override
  public void close() throws IOException {
    channel.close();
  }
}
