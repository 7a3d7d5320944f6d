package dev.thaw.store;

import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;
import dev.thaw.format.Digest;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

/**
 * Several copies of one datastore ({@code --store A --store B}): every read goes to the first store
 * and, when that one cannot serve it (missing, refused, down), to the next. A read fails only when
 * every store failed; it is retryable if any store's failure was, and "not found" only if every
 * store lacks the object. Snapshots are the union of what the stores list. Thread-safe when the
 * stores are.
 */
final class MirrorStore implements ChunkStore {
  private final List<ChunkStore> stores;

  MirrorStore(List<ChunkStore> stores) {
    if (stores.size() < 2) {
      throw new IllegalArgumentException("mirrors need at least two stores");
    }
    this.stores = List.copyOf(stores);
  }

  /** One read of one store. */
  private interface Read<T> {
    T from(ChunkStore s) throws IOException;
  }

  private <T> T first(Read<T> read, String what) throws IOException {
    return first(read, what, 0);
  }

  /** Tries the stores in order, beginning with store {@code start} and wrapping around. */
  private <T> T first(Read<T> read, String what, int start) throws IOException {
    List<String> reasons = new ArrayList<>();
    boolean allMissing = true;
    boolean anyRetryable = false;
    IOException firstError = null;
    for (int k = 0; k < stores.size(); k++) {
      ChunkStore s = stores.get((start + k) % stores.size());
      try {
        return read.from(s);
      } catch (NotFoundException e) {
        reasons.add(e.getMessage());
        firstError = firstError == null ? e : firstError;
      } catch (StoreException e) {
        allMissing = false;
        anyRetryable |= e.retryable();
        reasons.add(e.getMessage());
        firstError = firstError == null ? e : firstError;
      } catch (IOException e) {
        allMissing = false;
        anyRetryable = true;
        reasons.add(what + ": " + e.getMessage() + " from " + s.describe());
        firstError = firstError == null ? e : firstError;
      }
    }
    String msg = what + ": no store could serve it: " + String.join("; ", reasons);
    if (allMissing) {
      throw new NotFoundException(msg, firstError);
    }
    throw new StoreException(msg, anyRetryable, firstError);
  }

  @Override
  public byte[] readChunk(Digest digest, int maxBytes) throws IOException {
    return first(s -> s.readChunk(digest, maxBytes), "chunk " + digest.hex());
  }

  /** After a bad copy from the first store, the next store's copy (then the others). */
  @Override
  public byte[] readChunkAgain(Digest digest, int maxBytes) throws IOException {
    return first(s -> s.readChunk(digest, maxBytes), "chunk " + digest.hex(), 1);
  }

  @Override
  public Buffer readChunk(Digest digest, int maxBytes, BufferPool pool) throws IOException {
    return first(s -> s.readChunk(digest, maxBytes, pool), "chunk " + digest.hex());
  }

  @Override
  public Buffer readChunkAgain(Digest digest, int maxBytes, BufferPool pool) throws IOException {
    return first(s -> s.readChunk(digest, maxBytes, pool), "chunk " + digest.hex(), 1);
  }

  @Override
  public byte[] readFile(SnapshotPath snapshot, String file) throws IOException {
    return first(s -> s.readFile(snapshot, file), snapshot + "/" + file);
  }

  /** The union of every store's snapshots; fails only if no store can list. */
  @Override
  public List<SnapshotPath> listSnapshots() throws IOException {
    TreeSet<SnapshotPath> all = new TreeSet<>();
    IOException failure = null;
    int listed = 0;
    for (ChunkStore s : stores) {
      try {
        all.addAll(s.listSnapshots());
        listed++;
      } catch (IOException e) {
        if (failure == null) {
          failure = e;
        } else {
          failure.addSuppressed(e);
        }
      }
    }
    if (listed == 0) {
      throw failure;
    }
    return new ArrayList<>(all);
  }

  @Override
  public String location(Digest digest) {
    return stores.get(0).location(digest)
        + " (or "
        + (stores.size() - 1)
        + " mirror"
        + (stores.size() > 2 ? "s" : "")
        + ")";
  }

  @Override
  public String location(SnapshotPath snapshot, String file) {
    return stores.get(0).location(snapshot, file);
  }

  @Override
  public String describe() {
    return String.join(" + ", stores.stream().map(ChunkStore::describe).toList());
  }

  @Override
  public void close() throws IOException {
    IOException failure = null;
    for (ChunkStore s : stores) {
      try {
        s.close();
      } catch (IOException e) {
        failure = failure == null ? e : failure;
      }
    }
    if (failure != null) {
      throw failure;
    }
  }
}
