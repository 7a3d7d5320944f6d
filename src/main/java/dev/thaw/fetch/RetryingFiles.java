package dev.thaw.fetch;

import dev.thaw.store.ChunkStore;
import dev.thaw.store.ForwardingChunkStore;
import dev.thaw.store.SnapshotPath;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.List;

/**
 * A store whose snapshot files (manifests, indexes) and listings are read with the same {@link
 * RetryPolicy} as chunks, so that a store down when a command starts is ridden out like one that
 * goes down later. Chunk reads pass through untouched: the pipeline retries those and counts them.
 * Thread-safe when the store is.
 */
final class RetryingFiles extends ForwardingChunkStore {
  private final RetryPolicy retry;

  RetryingFiles(ChunkStore store, RetryPolicy retry) {
    super(store);
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
  public byte[] readFile(SnapshotPath snapshot, String file) throws IOException {
    return call(() -> delegate().readFile(snapshot, file));
  }

  @Override
  public List<SnapshotPath> listSnapshots() throws IOException {
    return call(delegate()::listSnapshots);
  }
}
