package dev.thaw.format;

/**
 * The chunk map of one image: which digest holds the bytes of which range. Implementations are
 * immutable and thread-safe. Chunk {@code i} covers {@code [start(i), end(i))}; chunks are
 * contiguous and cover {@code [0, size())}.
 */
public interface ChunkIndex {
  /** Image size in bytes. */
  long size();

  /** Number of chunks. */
  int chunkCount();

  /** First byte of chunk {@code i}. */
  long start(int i);

  /** End (exclusive) of chunk {@code i}. */
  long end(int i);

  /** Length of chunk {@code i} in bytes. */
  default int length(int i) {
    return (int) (end(i) - start(i));
  }

  /** Digest of chunk {@code i}. */
  Digest digest(int i);

  /** The chunk holding byte {@code offset}, which must lie in {@code [0, size())}. */
  int chunkAt(long offset);

  /** Largest chunk length in this index. */
  int maxChunkLength();

  /** The checksum that identifies this index (the manifest's {@code csum}). */
  byte[] checksum();
}
