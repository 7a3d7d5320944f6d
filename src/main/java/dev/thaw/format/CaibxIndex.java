package dev.thaw.format;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A casync blob index ({@code NAME.caibx}): a 48-byte header (size, type, feature flags, chunk size
 * min/avg/max), a table header, one 40-byte item per chunk (exclusive end offset, chunk id) and a
 * 40-byte tail ending in a marker. Chunks have variable sizes: chunk {@code i} spans {@code
 * [end(i-1), end(i))}, and {@link #chunkAt} is a binary search over the end offsets. Immutable and
 * thread-safe.
 */
public final class CaibxIndex implements ChunkIndex {
  /** Suffix of casync blob index files. */
  public static final String SUFFIX = ".caibx";

  static final long TYPE_INDEX = 0x96824d9c7b129ff9L;
  static final long TYPE_TABLE = 0xe75b9e112f17417dL;
  static final long TABLE_MARKER = 0x4b4f050e5549ecd1L;

  /** Feature flag: chunk ids are SHA-512/256 (else SHA-256). */
  static final long FLAG_SHA512_256 = 0x2000000000000000L;

  static final int HEADER = 48;
  static final int TABLE_HEADER = 16;
  static final int ITEM = 40;
  static final int TAIL = 40;

  private final long flags;
  private final int minSize;
  private final int avgSize;
  private final int maxSize;
  private final long[] ends;
  private final byte[] ids;
  private final byte[] checksum;

  private CaibxIndex(long flags, int minSize, int avgSize, int maxSize, long[] ends, byte[] ids) {
    this.flags = flags;
    this.minSize = minSize;
    this.avgSize = avgSize;
    this.maxSize = maxSize;
    this.ends = ends;
    this.ids = ids;
    byte[] table = new byte[ends.length * ITEM];
    ByteBuffer b = ByteBuffer.wrap(table).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < ends.length; i++) {
      b.putLong(ends[i]).put(ids, i * Digest.LENGTH, Digest.LENGTH);
    }
    this.checksum = FixedIndex.sha256(table);
  }

  /**
   * Parses and checks an index: header and table types, chunk size limits, offsets strictly
   * increasing, every chunk at most the maximum size, and the tail (marker, offset, size).
   *
   * @param name the index's path or URL, for messages
   * @throws FormatException naming {@code name} and what is wrong
   */
  public static CaibxIndex parse(byte[] data, String name) throws FormatException {
    String where = name + ": ";
    if (data.length < HEADER + TABLE_HEADER + TAIL) {
      throw new FormatException(
          where + "not a casync index: " + data.length + " bytes is too short");
    }
    ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    if (b.getLong(0) != HEADER || b.getLong(8) != TYPE_INDEX) {
      throw new FormatException(
          where
              + "not a casync index (wrong header size or type: "
              + hex(b.getLong(0))
              + ", "
              + hex(b.getLong(8))
              + ")");
    }
    long flags = b.getLong(16);
    long min = b.getLong(24);
    long avg = b.getLong(32);
    long max = b.getLong(40);
    if (min < 1 || min > avg || avg > max || max > BlobCodec.MAX_CHUNK) {
      throw new FormatException(
          where
              + "bad chunk size limits (min "
              + min
              + ", avg "
              + avg
              + ", max "
              + max
              + "; max may be at most "
              + BlobCodec.MAX_CHUNK
              + ")");
    }
    if (b.getLong(HEADER) != -1L || b.getLong(HEADER + 8) != TYPE_TABLE) {
      throw new FormatException(
          where + "wrong table header (type " + hex(b.getLong(HEADER + 8)) + ")");
    }
    int tail = data.length - TAIL;
    if (b.getLong(tail + 32) != TABLE_MARKER) {
      throw new FormatException(where + "no table tail marker at the end: truncated or damaged");
    }
    if ((data.length - HEADER - TABLE_HEADER - TAIL) % ITEM != 0) {
      throw new FormatException(
          where + "table length " + (data.length - HEADER) + " is not whole items");
    }
    int n = (data.length - HEADER - TABLE_HEADER - TAIL) / ITEM;
    long tableSize = TABLE_HEADER + (long) ITEM * n + TAIL;
    if (b.getLong(tail) != 0
        || b.getLong(tail + 8) != 0
        || b.getLong(tail + 16) != HEADER
        || b.getLong(tail + 24) != tableSize) {
      throw new FormatException(
          where
              + "table tail does not match the file (offset "
              + b.getLong(tail + 16)
              + ", size "
              + b.getLong(tail + 24)
              + ", expected "
              + HEADER
              + ", "
              + tableSize
              + ")");
    }
    long[] ends = new long[n];
    byte[] ids = new byte[n * Digest.LENGTH];
    long prev = 0;
    for (int i = 0; i < n; i++) {
      int at = HEADER + TABLE_HEADER + i * ITEM;
      long end = b.getLong(at);
      if (end <= prev) {
        throw new FormatException(
            where
                + "chunk "
                + i
                + " end offset "
                + end
                + " does not increase (previous "
                + prev
                + ")");
      }
      if (end - prev > max) {
        throw new FormatException(
            where
                + "chunk "
                + i
                + " has "
                + (end - prev)
                + " bytes, more than the index's maximum chunk size "
                + max);
      }
      ends[i] = end;
      System.arraycopy(data, at + 8, ids, i * Digest.LENGTH, Digest.LENGTH);
      prev = end;
    }
    return new CaibxIndex(flags, (int) min, (int) avg, (int) max, ends, ids);
  }

  private static String hex(long v) {
    return "0x" + Long.toHexString(v);
  }

  /** The image name an index path or URL stands for: its last element without {@code .caibx}. */
  public static String imageName(String location) {
    String s = location;
    int q = s.indexOf('?');
    if (q >= 0 && s.contains("://")) {
      s = s.substring(0, q);
    }
    s = s.substring(s.lastIndexOf('/') + 1);
    if (s.endsWith(SUFFIX)) {
      s = s.substring(0, s.length() - SUFFIX.length());
    }
    if (s.isEmpty() || s.startsWith(".")) {
      throw new IllegalArgumentException(
          "cannot name an image after the index " + location + " (expected NAME.caibx)");
    }
    return s;
  }

  /** Whether chunk ids are SHA-512/256 (casync's default) rather than SHA-256. */
  public boolean sha512_256() {
    return (flags & FLAG_SHA512_256) != 0;
  }

  /** The header's feature flags. */
  public long featureFlags() {
    return flags;
  }

  public int minChunkSize() {
    return minSize;
  }

  public int avgChunkSize() {
    return avgSize;
  }

  /** The largest chunk casync makes for this index (runs of zeros come in chunks of this size). */
  public int maxChunkSize() {
    return maxSize;
  }

  @Override
  public long size() {
    return ends.length == 0 ? 0 : ends[ends.length - 1];
  }

  @Override
  public int chunkCount() {
    return ends.length;
  }

  @Override
  public long start(int i) {
    return i == 0 ? 0 : ends[i - 1];
  }

  @Override
  public long end(int i) {
    return ends[i];
  }

  @Override
  public Digest digest(int i) {
    return Digest.of(ids, i * Digest.LENGTH);
  }

  @Override
  public int chunkAt(long offset) {
    if (offset < 0 || offset >= size()) {
      throw new IndexOutOfBoundsException("offset " + offset + " outside image of " + size());
    }
    // the first chunk whose (exclusive) end lies beyond offset
    int i = Arrays.binarySearch(ends, offset);
    return i >= 0 ? i + 1 : -i - 1;
  }

  @Override
  public int maxChunkLength() {
    return maxSize;
  }

  /**
   * SHA-256 over the item table (end offsets and ids): identifies this index, e.g. to a resumed
   * restore.
   */
  @Override
  public byte[] checksum() {
    return checksum.clone();
  }
}
