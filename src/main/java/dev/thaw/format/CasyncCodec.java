package dev.thaw.format;

import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.zip.GZIPInputStream;
import org.tukaani.xz.XZInputStream;

/**
 * Decodes casync chunk files ({@code .cacnk}): the compression is detected per chunk by its magic
 * (zstd, xz, gzip, or none), then the length and the chunk id are checked; the id is SHA-512/256 or
 * SHA-256 of the uncompressed data, as the index's feature flags say.
 *
 * <p>All-zero chunks: casync cuts runs of zeros into chunks of the index's maximum size, so the
 * codec knows the id of an all-zero chunk of that size and recognises it without a fetch.
 *
 * <p>Thread-safe: zstd contexts and message digests are per thread.
 */
public final class CasyncCodec implements ChunkCodec {
  private static final byte[] ZSTD = {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd};
  private static final byte[] XZ = {(byte) 0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00};
  private static final byte[] GZIP = {0x1f, (byte) 0x8b};

  private final String algorithm;
  private final ThreadLocal<MessageDigest> hash;
  private final ZstdDecoder zstd = new ZstdDecoder();
  private final int zeroLength;
  private final Digest zeroId;

  /**
   * @param sha512_256 chunk ids are SHA-512/256 (else SHA-256)
   * @param zeroLength the length of the all-zero chunks to recognise (the index's maximum chunk
   *     size)
   */
  public CasyncCodec(boolean sha512_256, int zeroLength) {
    this.algorithm = sha512_256 ? "SHA-512/256" : "SHA-256";
    this.hash = ThreadLocal.withInitial(() -> newDigest(algorithm));
    this.zeroLength = zeroLength;
    this.zeroId = id(new byte[zeroLength], 0, zeroLength);
  }

  /** The codec for an index's chunks: its id algorithm and its maximum chunk size. */
  public static CasyncCodec forIndex(CaibxIndex index) {
    return new CasyncCodec(index.sha512_256(), index.maxChunkSize());
  }

  /** The id of plain chunk data. */
  public Digest id(byte[] data, int offset, int length) {
    MessageDigest md = hash.get();
    md.update(data, offset, length);
    return Digest.of(md.digest());
  }

  /** {@code SHA-512/256} or {@code SHA-256}. */
  public String algorithm() {
    return algorithm;
  }

  @Override
  public boolean isZero(Digest digest, int length) {
    return length == zeroLength && digest.equals(zeroId);
  }

  @Override
  public byte[] decodeChunk(byte[] stored, Digest expected, int expectedLength)
      throws FormatException {
    return decodeChunk(Buffer.wrap(stored), expected, expectedLength, null).exactArray();
  }

  /**
   * {@link #decodeChunk(byte[], Digest, int)}: a zstd chunk decompressed into a buffer of {@code
   * pool} (null: a new array), an uncompressed one checked where it lies.
   */
  @Override
  public Buffer decodeChunk(Buffer stored, Digest expected, int expectedLength, BufferPool pool)
      throws FormatException {
    int max = expectedLength >= 0 ? expectedLength : BlobCodec.MAX_CHUNK;
    Buffer data = null;
    try {
      data = decompress(stored, expectedLength, max, pool);
      if (data != stored) {
        stored.release();
      }
      stored = null;
      if (expectedLength >= 0 && data.length() != expectedLength) {
        throw new FormatException(
            "chunk has " + data.length() + " bytes, index says " + expectedLength);
      }
      Digest actual = id(data.array(), data.offset(), data.length());
      if (!actual.equals(expected)) {
        throw new FormatException(
            "chunk id mismatch: data hashes to " + actual.hex() + " (" + algorithm + ")");
      }
      Buffer result = data;
      data = null;
      return result;
    } finally {
      if (stored != null) {
        stored.release();
      }
      if (data != null) {
        data.release();
      }
    }
  }

  /**
   * The plain data of {@code stored}: a new buffer, or {@code stored} itself when not compressed.
   */
  private Buffer decompress(Buffer stored, int expectedLength, int max, BufferPool pool)
      throws FormatException {
    byte[] a = stored.array();
    int off = stored.offset();
    int len = stored.length();
    if (starts(a, off, len, ZSTD)) {
      return zstd.decompress(a, off, len, expectedLength, max, pool);
    }
    try {
      if (starts(a, off, len, XZ)) {
        try (XZInputStream in = new XZInputStream(new ByteArrayInputStream(a, off, len))) {
          return Buffer.wrap(Streams.readBounded(in, max, "xz"));
        }
      }
      if (starts(a, off, len, GZIP)) {
        try (GZIPInputStream in = new GZIPInputStream(new ByteArrayInputStream(a, off, len))) {
          return Buffer.wrap(Streams.readBounded(in, max, "gzip"));
        }
      }
    } catch (FormatException e) {
      throw e;
    } catch (IOException | RuntimeException e) {
      throw new FormatException("compressed chunk is damaged: " + e.getMessage());
    }
    if (len > max) {
      throw new FormatException("uncompressed chunk of " + len + " bytes exceeds " + max);
    }
    return stored; // no known magic: stored uncompressed; the id check decides
  }

  private static boolean starts(byte[] b, int off, int len, byte[] magic) {
    return len >= magic.length
        && java.util.Arrays.equals(b, off, off + magic.length, magic, 0, magic.length);
  }

  private static MessageDigest newDigest(String algorithm) {
    try {
      return MessageDigest.getInstance(algorithm);
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }
}
