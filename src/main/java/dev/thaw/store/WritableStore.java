package dev.thaw.store;

import dev.thaw.format.Digest;
import java.io.IOException;

/** A store that backups can write to. Thread-safe like {@link ChunkStore}. */
public interface WritableStore extends ChunkStore {
  /** Whether the store already holds a chunk (so that a backup need not write it). */
  boolean hasChunk(Digest digest) throws IOException;

  /**
   * Writes a chunk's blob atomically: readers see the whole chunk or none. Writing a chunk that
   * exists is harmless.
   */
  void writeChunk(Digest digest, byte[] blob) throws IOException;

  /**
   * Starts a new snapshot. Its files become visible together, and only when
   * {@link SnapshotWriter#commit()} succeeds.
   */
  SnapshotWriter createSnapshot(SnapshotPath snapshot) throws IOException;

  /** Collects the files of a new snapshot. Not thread-safe. */
  interface SnapshotWriter extends AutoCloseable {
    void writeFile(String name, byte[] data) throws IOException;

    /** Publishes the snapshot. @throws IOException if a snapshot of that name exists */
    void commit() throws IOException;

    /** Discards an uncommitted snapshot. */
    @Override
    void close() throws IOException;
  }
}
