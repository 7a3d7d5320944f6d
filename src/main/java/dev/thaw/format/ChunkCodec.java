package dev.thaw.format;

import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;

/**
 * Turns a chunk file's bytes into the chunk's verified plain data, and recognises all-zero chunks
 * from their digest alone so that they are never fetched. One codec per snapshot key (Proxmox
 * DataBlobs, {@link BlobCodec}) or per casync index ({@link CasyncCodec}); the fetch pipeline,
 * cache, image reader and restorer see only this interface.
 *
 * <p>Implementations are thread-safe and are called from the pipeline's CPU pool.
 */
public interface ChunkCodec {
  /**
   * Decodes a stored chunk and checks that its data has {@code expectedLength} bytes and hashes to
   * {@code expected}.
   *
   * @param expectedLength the chunk length the index says, or -1 when unknown
   * @throws FormatException on any mismatch; the message says which check failed
   */
  byte[] decodeChunk(byte[] stored, Digest expected, int expectedLength) throws FormatException;

  /**
   * {@link #decodeChunk(byte[], Digest, int)} of the bytes in {@code stored}, the plain data in a
   * buffer of {@code pool}, or in {@code stored} itself where the data is stored as it is (then
   * only its range changes: no copy). Takes over the caller's reference to {@code stored}: it is
   * released, or returned as the result; on failure everything is released. The fetch pipeline
   * decodes this way; a codec that does not override it decodes a copy.
   */
  default Buffer decodeChunk(Buffer stored, Digest expected, int expectedLength, BufferPool pool)
      throws FormatException {
    try {
      return Buffer.wrap(decodeChunk(stored.toArray(), expected, expectedLength));
    } finally {
      stored.release();
    }
  }

  /**
   * Whether {@code digest} names the all-zero chunk of {@code length} bytes. True only for such a
   * chunk; a codec may answer false for zero chunks of lengths it does not track (they are then
   * fetched and verified like any other).
   */
  boolean isZero(Digest digest, int length);

  /**
   * The most bytes a stored chunk of {@code length} plain bytes can take: its header, and
   * compression's worst-case growth (zstd, xz and gzip grow incompressible data by well under
   * 1/16). A store reads no more than this, so that a damaged or hostile chunk file (a gigabyte, a
   * link to {@code /dev/zero}) is refused instead of filling memory.
   */
  default int maxStoredLength(int length) {
    return (int) Math.min(Integer.MAX_VALUE - 16, length + (long) length / 16 + 4096);
  }
}
