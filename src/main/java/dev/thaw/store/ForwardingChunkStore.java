package dev.thaw.store;

import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;
import dev.thaw.format.Digest;
import java.io.IOException;
import java.util.List;

/**
 * A store that passes every call to another: the base of a decorator that changes one or two calls
 * (retries of snapshot files, a debug log) and forwards the rest. Thread-safe when the store it
 * forwards to is and the subclass's additions are.
 */
public abstract class ForwardingChunkStore implements ChunkStore {
  private final ChunkStore store;

  protected ForwardingChunkStore(ChunkStore store) {
    this.store = store;
  }

  /** The store calls are forwarded to. */
  protected final ChunkStore delegate() {
    return store;
  }

  @Override
  public byte[] readChunk(Digest digest, int maxBytes) throws IOException {
    return store.readChunk(digest, maxBytes);
  }

  @Override
  public byte[] readChunkAgain(Digest digest, int maxBytes) throws IOException {
    return store.readChunkAgain(digest, maxBytes);
  }

  @Override
  public Buffer readChunk(Digest digest, int maxBytes, BufferPool pool) throws IOException {
    return store.readChunk(digest, maxBytes, pool);
  }

  @Override
  public Buffer readChunkAgain(Digest digest, int maxBytes, BufferPool pool) throws IOException {
    return store.readChunkAgain(digest, maxBytes, pool);
  }

  @Override
  public byte[] readFile(SnapshotPath snapshot, String file) throws IOException {
    return store.readFile(snapshot, file);
  }

  @Override
  public List<SnapshotPath> listSnapshots() throws IOException {
    return store.listSnapshots();
  }

  @Override
  public String location(Digest digest) {
    return store.location(digest);
  }

  @Override
  public String location(SnapshotPath snapshot, String file) {
    return store.location(snapshot, file);
  }

  @Override
  public String describe() {
    return store.describe();
  }

  @Override
  public void close() throws IOException {
    store.close();
  }
}
