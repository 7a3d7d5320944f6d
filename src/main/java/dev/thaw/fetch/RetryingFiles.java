package dev.thaw.fetch;

import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;
import dev.thaw.format.Digest;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.SnapshotPath;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.List;

/**
 * A store whose snapshot files (manifests, indexes) and listings are read with the same
 * {@link RetryPolicy} as chunks, so that a store down when a command starts is ridden out like
 * one that goes down later. Chunk reads pass through untouched: the pipeline retries those and
 * counts them. Thread-safe when the store is.
 */
final class RetryingFiles implements ChunkStore {
  private final ChunkStore store;
  private final RetryPolicy retry;

  RetryingFiles(ChunkStore store, RetryPolicy retry) {
    this.store = store;
    this.retry = retry;
  }

  private <T> T call(RetryPolicy.Attempt<T> op) throws IOException {
    try {
      return retry.call(op);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted");
    }
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
    return call(() -> store.readFile(snapshot, file));
  }

  @Override
  public List<SnapshotPath> listSnapshots() throws IOException {
    return call(store::listSnapshots);
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
