package dev.thaw.format;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.UUID;

/**
 * A Proxmox Backup fixed-size chunk index ({@code NAME.img.fidx}): a 4096-byte header (magic, uuid,
 * ctime, index checksum, image size, chunk size) followed by one 32-byte digest per chunk.
 * Immutable and thread-safe.
 */
public final class FixedIndex implements ChunkIndex {
  /** Header length in bytes. */
  public static final int HEADER = 4096;

  /** The chunk size of VM images. */
  public static final int DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;

  private final UUID uuid;
  private final long ctime;
  private final long size;
  private final int chunkSize;
  private final int shift;
  private final byte[] digests;
  private final byte[] csum;

  private FixedIndex(UUID uuid, long ctime, long size, int chunkSize, byte[] digests, byte[] csum) {
    this.uuid = uuid;
    this.ctime = ctime;
    this.size = size;
    this.chunkSize = chunkSize;
    this.shift = Integer.numberOfTrailingZeros(chunkSize);
    this.digests = digests;
    this.csum = csum;
  }

  /**
   * Parses and checks an index file: magic, length, chunk size and checksum.
   *
   * @param name the file name, for messages
   */
  public static FixedIndex parse(byte[] data, String name) throws FormatException {
    if (data.length < HEADER) {
      throw new FormatException(
          name + ": truncated fixed index (" + data.length + " bytes, header is 4096)");
    }
    if (!Magic.matches(Magic.FIXED_INDEX, data, 0)) {
      throw new FormatException(name + ": not a fixed index (wrong magic)");
    }
    ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    UUID uuid =
        new UUID(ByteBuffer.wrap(data, 8, 8).getLong(), ByteBuffer.wrap(data, 16, 8).getLong());
    long ctime = b.getLong(24);
    byte[] csum = Arrays.copyOfRange(data, 32, 64);
    long size = b.getLong(64);
    long chunkSize = b.getLong(72);
    if (chunkSize <= 0 || Long.bitCount(chunkSize) != 1 || chunkSize > BlobCodec.MAX_CHUNK) {
      throw new FormatException(name + ": bad chunk size " + chunkSize);
    }
    if (size < 0) {
      throw new FormatException(name + ": bad image size " + size);
    }
    long count = size / chunkSize + (size % chunkSize == 0 ? 0 : 1); // no overflow near 2^63
    if (count > (Integer.MAX_VALUE - HEADER) / Digest.LENGTH) {
      throw new FormatException(
          name
              + ": image size "
              + size
              + " needs "
              + count
              + " chunks of "
              + chunkSize
              + " bytes, more than an index can hold; damaged");
    }
    if (data.length != HEADER + Digest.LENGTH * count) {
      throw new FormatException(
          name
              + ": index length "
              + data.length
              + " does not match image size "
              + size
              + " ("
              + count
              + " chunks of "
              + chunkSize
              + " need "
              + (HEADER + Digest.LENGTH * count)
              + " bytes); truncated or damaged");
    }
    byte[] digests = Arrays.copyOfRange(data, HEADER, data.length);
    if (!Arrays.equals(sha256(digests), csum)) {
      throw new FormatException(name + ": index checksum mismatch (damaged)");
    }
    return new FixedIndex(uuid, ctime, size, (int) chunkSize, digests, csum);
  }

  /** Builds an index from digests, computing its checksum. */
  public static FixedIndex of(long size, int chunkSize, Digest[] chunks, UUID uuid, long ctime) {
    if (Integer.bitCount(chunkSize) != 1) {
      throw new IllegalArgumentException("chunk size must be a power of two: " + chunkSize);
    }
    long count = (size + chunkSize - 1) / chunkSize;
    if (chunks.length != count) {
      throw new IllegalArgumentException(chunks.length + " digests for " + count + " chunks");
    }
    byte[] digests = new byte[chunks.length * Digest.LENGTH];
    for (int i = 0; i < chunks.length; i++) {
      chunks[i].copyTo(digests, i * Digest.LENGTH);
    }
    return new FixedIndex(uuid, ctime, size, chunkSize, digests, sha256(digests));
  }

  /** The file bytes. */
  public byte[] toBytes() {
    byte[] out = new byte[HEADER + digests.length];
    ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
    System.arraycopy(Magic.FIXED_INDEX, 0, out, 0, 8);
    ByteBuffer.wrap(out, 8, 16)
        .putLong(uuid.getMostSignificantBits())
        .putLong(uuid.getLeastSignificantBits());
    b.putLong(24, ctime);
    System.arraycopy(csum, 0, out, 32, 32);
    b.putLong(64, size);
    b.putLong(72, chunkSize);
    System.arraycopy(digests, 0, out, HEADER, digests.length);
    return out;
  }

  public UUID uuid() {
    return uuid;
  }

  /** Creation time, epoch seconds. */
  public long ctime() {
    return ctime;
  }

  /** The fixed chunk size (the last chunk may be shorter). */
  public int chunkSize() {
    return chunkSize;
  }

  @Override
  public long size() {
    return size;
  }

  @Override
  public int chunkCount() {
    return digests.length / Digest.LENGTH;
  }

  @Override
  public long start(int i) {
    return (long) i << shift;
  }

  @Override
  public long end(int i) {
    return Math.min(size, ((long) i + 1) << shift);
  }

  @Override
  public Digest digest(int i) {
    return Digest.of(digests, i * Digest.LENGTH);
  }

  @Override
  public int chunkAt(long offset) {
    if (offset < 0 || offset >= size) {
      throw new IndexOutOfBoundsException("offset " + offset + " outside image of " + size);
    }
    return (int) (offset >>> shift);
  }

  @Override
  public int maxChunkLength() {
    return chunkSize;
  }

  @Override
  public byte[] checksum() {
    return csum.clone();
  }

  static byte[] sha256(byte[] data) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(data);
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }
}
