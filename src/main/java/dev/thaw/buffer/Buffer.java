package dev.thaw.buffer;

import java.util.Arrays;

/**
 * A byte array with a reference count: chunk bytes as they move from a store through decoding to a
 * writer or a cache. The bytes are {@code array()[offset(), offset() + length())}; the array may be
 * longer.
 *
 * <p>Whoever holds a reference may read the bytes; the one holder of a fresh buffer may also write
 * them and narrow the range ({@link #range}) before it shares the buffer. {@link #release} gives a
 * reference up; the last one hands the array back to its {@link BufferPool}, and from then on this
 * object is dead: {@link #retain} fails, so a stale handle can never reach the bytes of the array's
 * next user. A buffer whose references are never all released is simply left to the garbage
 * collector. Thread-safe.
 */
public final class Buffer {
  private final BufferPool pool;
  private final byte[] array;
  private int offset;
  private int length;
  private int refs = 1;

  Buffer(BufferPool pool, byte[] array, int length) {
    this.pool = pool;
    this.array = array;
    this.length = length;
  }

  /**
   * A buffer of {@code length} bytes from {@code pool}, or over a new array of exactly that length
   * when {@code pool} is null.
   */
  public static Buffer take(BufferPool pool, int length) {
    return pool != null ? pool.take(length) : wrap(new byte[length]);
  }

  /** A buffer over {@code data} (whole) that belongs to no pool: its array is never reused. */
  public static Buffer wrap(byte[] data) {
    return new Buffer(null, data, data.length);
  }

  /**
   * The array; read it only while holding a reference, within {@link #offset()} and {@link
   * #length()}.
   */
  public byte[] array() {
    return array;
  }

  public synchronized int offset() {
    return offset;
  }

  public synchronized int length() {
    return length;
  }

  /** The array's length: the memory this buffer holds. */
  public int capacity() {
    return array.length;
  }

  /**
   * Sets the range of valid bytes, e.g. a blob's payload after its header. Only the one holder of a
   * buffer not yet shared may call this.
   */
  public synchronized void range(int offset, int length) {
    if (offset < 0 || length < 0 || offset + length > array.length) {
      throw new IndexOutOfBoundsException("range " + offset + "+" + length + " of " + array.length);
    }
    this.offset = offset;
    this.length = length;
  }

  /**
   * Takes another reference; false when the buffer was freed already (then it must not be read).
   */
  public synchronized boolean retain() {
    if (refs <= 0) {
      return false;
    }
    refs++;
    return true;
  }

  /**
   * Adds {@code n} references at once, for a buffer about to be handed to {@code n} more holders.
   *
   * @throws IllegalStateException if the buffer was freed
   */
  public synchronized void share(int n) {
    if (refs <= 0) {
      throw new IllegalStateException("a freed buffer cannot be shared");
    }
    refs += n;
  }

  /**
   * Gives up one reference; the last one returns the array to the pool.
   *
   * @throws IllegalStateException when released more often than referenced (a bug)
   */
  public void release() {
    int left;
    synchronized (this) {
      left = --refs;
    }
    if (left == 0) {
      if (pool != null) {
        pool.recycle(array);
      }
    } else if (left < 0) {
      throw new IllegalStateException("buffer released once too often");
    }
  }

  /** The bytes in an array of their own length: the array itself when they fill it, else a copy. */
  public synchronized byte[] exactArray() {
    return offset == 0 && length == array.length ? array : toArray();
  }

  /** A copy of the bytes. */
  public synchronized byte[] toArray() {
    return Arrays.copyOfRange(array, offset, offset + length);
  }

  @Override
  public synchronized String toString() {
    return "Buffer[" + offset + "+" + length + " of " + array.length + ", refs " + refs + "]";
  }
}
