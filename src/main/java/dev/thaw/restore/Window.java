package dev.thaw.restore;

/**
 * The chunks a restore, live restore or verify has requested and not yet received: it keeps at
 * least {@code chunks} of them and at least {@code bytes} outstanding, whichever is more, so that
 * small chunks (casync's are 64 KiB on average) keep as many bytes on the way as 4 MiB chunks do.
 * Not thread-safe: the one thread that requests and receives uses it.
 */
final class Window {
  private final int chunks;
  private final long bytes;
  private int outstanding;
  private long outstandingBytes;

  /**
   * @param chunks chunks kept requested at least (at least 1)
   * @param bytes and bytes kept requested at least; 0 counts chunks only
   */
  Window(int chunks, long bytes) {
    this.chunks = Math.max(1, chunks);
    this.bytes = Math.max(0, bytes);
  }

  /** Whether another chunk may be requested. */
  boolean hasRoom() {
    return outstanding < chunks || outstandingBytes < bytes;
  }

  /** Whether another chunk may be requested while at most {@code limit} chunks are to be out. */
  boolean hasRoomWithin(int limit) {
    return hasRoom() && outstanding < Math.max(1, limit);
  }

  /** A chunk of {@code length} bytes was requested. */
  void requested(int length) {
    outstanding++;
    outstandingBytes += length;
  }

  /** A chunk of {@code length} bytes arrived (or failed). */
  void received(int length) {
    outstanding--;
    outstandingBytes -= length;
  }

  /** Chunks requested and not yet received. */
  int outstanding() {
    return outstanding;
  }

  /** Chunks kept requested at least. */
  int chunks() {
    return chunks;
  }
}
