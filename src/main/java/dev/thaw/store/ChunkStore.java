package dev.thaw.store;

import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;
import dev.thaw.format.Digest;
import java.io.Closeable;
import java.io.IOException;
import java.util.List;

/**
 * Where a datastore's chunks and snapshot files live. Implementations are thread-safe: the fetch
 * pipeline calls {@link #readChunk} from many threads at once. Reads are single attempts; the
 * pipeline owns retries and backoff, so a store reports faults as {@link StoreException} with
 * {@link StoreException#retryable()} set where another attempt may help.
 */
public interface ChunkStore extends Closeable {
  /**
   * The largest snapshot file (index, manifest, blob) a store reads: a fixed index of this size
   * maps a 32 TiB image. A larger file is refused before it is read, so that a damaged or hostile
   * store cannot exhaust memory.
   */
  long MAX_FILE_BYTES = 256L << 20;

  /**
   * The raw blob bytes of a chunk, at most {@code maxBytes} of them: a larger object (a file's
   * length, a {@code Content-Length}, or a body that does not end) is a {@link StoreException}
   * naming its size, found before more than {@code maxBytes + 1} bytes are held.
   *
   * @param maxBytes the largest stored form the chunk can have (its codec says)
   * @throws NotFoundException if the store lacks it
   */
  byte[] readChunk(Digest digest, int maxBytes) throws IOException;

  /**
   * The raw blob of a chunk once more, after the copy read before failed verification. A store with
   * several copies (mirrors) reads another one; others read the same object again.
   */
  default byte[] readChunkAgain(Digest digest, int maxBytes) throws IOException {
    return readChunk(digest, maxBytes);
  }

  /**
   * {@link #readChunk(Digest, int)} into a buffer of {@code pool}, bounded the same way: the caller
   * gets the buffer's one reference. The fetch pipeline reads chunks this way; a store that knows
   * an object's size before its bytes (a file's length, a {@code Content-Length}) reads them
   * straight into a pooled array of that size, so that no chunk-sized array is allocated or copied.
   * A store that does not override it has its byte array wrapped.
   */
  default Buffer readChunk(Digest digest, int maxBytes, BufferPool pool) throws IOException {
    return Buffer.wrap(readChunk(digest, maxBytes));
  }

  /**
   * {@link #readChunkAgain(Digest, int)} into a buffer of {@code pool}, as {@link
   * #readChunk(Digest, int, BufferPool)}.
   */
  default Buffer readChunkAgain(Digest digest, int maxBytes, BufferPool pool) throws IOException {
    return Buffer.wrap(readChunkAgain(digest, maxBytes));
  }

  /**
   * A file of a snapshot (index, manifest, blob), at most {@link #MAX_FILE_BYTES} bytes.
   *
   * @throws NotFoundException if absent
   */
  byte[] readFile(SnapshotPath snapshot, String file) throws IOException;

  /** Every snapshot in the store, sorted by group then time. */
  List<SnapshotPath> listSnapshots() throws IOException;

  /** Where a chunk lives (path or URL), for messages. */
  String location(Digest digest);

  /** Where a snapshot file lives (path or URL), for messages. */
  String location(SnapshotPath snapshot, String file);

  /** The store as the user named it (path or URL without credentials). */
  String describe();

  /** Relative path of a chunk in a datastore: {@code .chunks/XXXX/<hex>}. */
  static String chunkPath(Digest d) {
    return ChunkLayout.DATASTORE.path(d);
  }
}
