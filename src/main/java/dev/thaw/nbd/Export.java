package dev.thaw.nbd;

import dev.thaw.image.ImageReader;
import java.io.IOException;
import java.util.List;

/**
 * A disk image as the NBD server serves it: a fixed size, reads, and for a writable export writes,
 * zeroing, discards and flushes; and an allocation map in which chunks that read as zeros without
 * being stored anywhere are holes. The server checks ranges, permissions and flags before it calls
 * an export; an export never answers with wrong bytes: what it cannot read it fails with an {@link
 * IOException}.
 *
 * <p>Made by {@link Exports}. Thread-safe; a {@link Handle} serves one client connection and is
 * called from several threads at once.
 */
public interface Export {
  /** The name clients ask for, e.g. {@code drive-scsi0.img}. */
  String name();

  /** Size in bytes. */
  long size();

  /** Whether writes are taken (a live restore or an overlay); otherwise the export is read-only. */
  boolean writable();

  /** A human-readable line about the export (what it serves, and where writes go). */
  String description();

  /** Opens the view of one client connection (its own sequential-stream detection). */
  Handle open();

  /** A run of bytes in the allocation map: {@code hole} reads as zeros and is stored nowhere. */
  record Extent(long length, boolean hole) {}

  /** One connection's access to the export. Thread-safe. */
  interface Handle extends AutoCloseable {
    /**
     * Reads {@code length} bytes at {@code offset} (within the export), handing them to {@code
     * sink} in order; zeros that need no copy come as {@code data == null}.
     *
     * @throws IOException naming the chunk and store when a chunk cannot be had
     */
    void read(long offset, int length, ImageReader.Sink sink) throws IOException;

    /** Writes; returns once the write is applied (durable after {@link #flush}). */
    void write(long offset, byte[] data, int from, int length) throws IOException;

    /** Makes {@code length} bytes at {@code offset} read as zeros. */
    void writeZeros(long offset, long length) throws IOException;

    /** A hint that {@code length} bytes at {@code offset} are no longer needed. */
    void discard(long offset, long length) throws IOException;

    /**
     * Makes every write that returned before this call durable, on this connection or any other of
     * the same export. A no-op for a read-only export.
     */
    void flush() throws IOException;

    /**
     * The allocation map from {@code offset}: consecutive extents covering at least {@code length}
     * bytes or up to the end of the export (the last may reach past {@code offset + length}, to the
     * end of its chunk).
     */
    List<Extent> extents(long offset, long length);

    /** Releases what the connection holds (its read-ahead). */
    @Override
    void close();
  }
}
