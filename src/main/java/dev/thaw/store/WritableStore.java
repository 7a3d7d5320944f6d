package dev.thaw.store;

import dev.thaw.format.Digest;
import java.io.IOException;

/** A store that backups can write to. Thread-safe like {@link ChunkStore}. */
public interface WritableStore extends ChunkStore {
  /** The file in a backup group that names the group's owner, as Proxmox Backup Server keeps it. */
  String GROUP_OWNER_FILE = "owner";

  /** Whether the store already holds a chunk (so that a backup need not write it). */
  boolean hasChunk(Digest digest) throws IOException;

  /**
   * Writes a chunk's blob atomically: readers see the whole chunk or none. Writing a chunk that
   * exists is harmless.
   */
  void writeChunk(Digest digest, byte[] blob) throws IOException;

  /**
   * Gives the snapshot's group an owner when it has none: {@value #GROUP_OWNER_FILE}, holding the
   * auth id and a newline, as PBS's {@code set_owner} writes it (PBS hides a group without one and
   * refuses the next backup into it). An existing owner is never changed.
   *
   * @param authId a Proxmox auth id such as {@code root@pam}
   * @return whether this call wrote the owner
   */
  boolean ensureGroupOwner(SnapshotPath snapshot, String authId) throws IOException;

  /**
   * Starts a new snapshot. Its files become visible together, and only when {@link
   * SnapshotWriter#commit()} succeeds.
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
