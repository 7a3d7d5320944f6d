package dev.thaw.fuse;

import dev.thaw.image.ImageReader;
import dev.thaw.restore.LiveRestore;
import dev.thaw.volume.Volume;
import java.io.IOException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The files a mount has open, by FUSE file handle. Each open file is one of four kinds: a read-only
 * image, a volume of one, a writable image (a live restore or overlay), or a copy of the status
 * document taken when it was opened. Thread-safe.
 */
final class OpenFiles {
  /** One open file. Reads and writes of one file may come from several FUSE threads at once. */
  sealed interface OpenFile permits ReadOnlyImage, WritableImage, VolumeOfImage, StatusCopy {
    /**
     * Reads up to {@code len} bytes at {@code offset} into {@code sink}; the bytes read, 0 at the
     * end.
     */
    int read(long offset, int len, ImageReader.Sink sink) throws IOException;

    /** Ends this open file. */
    default void release() {}
  }

  /** A read-only image: reads through its own reader handle (its own read-ahead streams). */
  record ReadOnlyImage(ImageReader.Handle handle) implements OpenFile {
    @Override
    public int read(long offset, int len, ImageReader.Sink sink) throws IOException {
      return handle.read(offset, len, sink);
    }

    @Override
    public void release() {
      handle.close();
    }
  }

  /**
   * A partition or logical volume of a read-only image: offset reads through its own image handle.
   */
  record VolumeOfImage(ImageReader.Handle handle, Volume volume) implements OpenFile {
    @Override
    public int read(long offset, int len, ImageReader.Sink sink) throws IOException {
      return volume.read(handle, offset, len, sink);
    }

    @Override
    public void release() {
      handle.close();
    }
  }

  /**
   * A writable image: reads and writes go through its live restore.
   *
   * @param writing opened for writing (a read-only open of a writable image may not write)
   */
  record WritableImage(ImageReader.Handle handle, LiveRestore live, boolean writing)
      implements OpenFile {
    @Override
    public int read(long offset, int len, ImageReader.Sink sink) throws IOException {
      return live.read(handle, offset, len, sink);
    }

    @Override
    public void release() {
      handle.close();
    }
  }

  /** The status document as it was when opened, so that a reader sees one consistent copy. */
  record StatusCopy(byte[] document) implements OpenFile {
    @Override
    public int read(long offset, int len, ImageReader.Sink sink) {
      if (offset >= document.length) {
        return 0;
      }
      int n = (int) Math.min(len, document.length - offset);
      sink.accept(0, document, (int) offset, n);
      return n;
    }
  }

  private final AtomicLong next = new AtomicLong(1);
  private final Map<Long, OpenFile> files = new ConcurrentHashMap<>();

  /** Registers {@code f}; returns its handle. */
  long add(OpenFile f) {
    long h = next.getAndIncrement();
    files.put(h, f);
    return h;
  }

  /** The open file of {@code handle}, or null. */
  OpenFile get(long handle) {
    return files.get(handle);
  }

  /** Forgets {@code handle} and releases its file. */
  void release(long handle) {
    OpenFile f = files.remove(handle);
    if (f != null) {
      f.release();
    }
  }
}
