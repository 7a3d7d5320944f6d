package dev.thaw.restore;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.BitSet;

/**
 * Which chunks of an image a restore has durably written, kept in a small file beside the
 * target so that an interrupted restore can resume. The file names the image (index checksum,
 * size, chunk count) and refuses to resume a different one. Saved by write-sync-rename, so a
 * crash leaves the old or the new state, never a torn one. Not thread-safe.
 */
final class RestoreState {
  private static final byte[] MAGIC = "THAWRST1".getBytes(StandardCharsets.US_ASCII);
  private static final int HEADER = 8 + 32 + 8 + 4;

  private final Path file;
  private final byte[] indexChecksum;
  private final long size;
  private final int chunks;
  private final BitSet done;

  private RestoreState(Path file, byte[] indexChecksum, long size, int chunks, BitSet done) {
    this.file = file;
    this.indexChecksum = indexChecksum.clone();
    this.size = size;
    this.chunks = chunks;
    this.done = done;
  }

  static RestoreState fresh(Path file, byte[] indexChecksum, long size, int chunks) {
    return new RestoreState(file, indexChecksum, size, chunks, new BitSet(chunks));
  }

  /** Loads a state file, or returns null if there is none. Refuses one for another image. */
  static RestoreState load(Path file, byte[] indexChecksum, long size, int chunks) throws IOException {
    byte[] data;
    try {
      data = Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      return null;
    }
    if (data.length < HEADER || !Arrays.equals(MAGIC, 0, 8, data, 0, 8)) {
      throw new IOException("restore state " + file + " is damaged or not a thaw state file; delete it to start over");
    }
    ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    byte[] csum = Arrays.copyOfRange(data, 8, 40);
    long s = b.getLong(40);
    int n = b.getInt(48);
    if (!MessageDigest.isEqual(csum, indexChecksum) || s != size || n != chunks) {
      throw new IOException("restore state " + file + " belongs to a different image (size " + s
          + ", " + n + " chunks); refusing to resume. Delete it to start over.");
    }
    BitSet done = BitSet.valueOf(Arrays.copyOfRange(data, HEADER, data.length));
    if (done.length() > chunks) {
      throw new IOException("restore state " + file + " is damaged (chunk " + (done.length() - 1) + " of " + chunks + ")");
    }
    return new RestoreState(file, indexChecksum, size, chunks, done);
  }

  boolean isDone(int chunk) {
    return done.get(chunk);
  }

  void markDone(int chunk) {
    done.set(chunk);
  }

  int doneCount() {
    return done.cardinality();
  }

  Path file() {
    return file;
  }

  /** Writes the state durably. Call only after the chunks it records are durable. */
  void save() throws IOException {
    byte[] bits = done.toByteArray();
    ByteBuffer b = ByteBuffer.allocate(HEADER + bits.length).order(ByteOrder.LITTLE_ENDIAN);
    b.put(MAGIC).put(indexChecksum).putLong(size).putInt(chunks).put(bits).flip();
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      while (b.hasRemaining()) {
        ch.write(b);
      }
      ch.force(true);
    }
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  void delete() throws IOException {
    Files.deleteIfExists(file);
  }
}
