package dev.thaw.restore;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.BitSet;
import java.util.zip.CRC32C;

/**
 * Which chunks of an image are present in a restore's target, recorded durably in a small file
 * beside the target so that an interrupted restore can resume. The file names the image (index
 * checksum, size, chunk count) and refuses to resume a different one.
 *
 * <p>The file is created at its full size when the restore starts and afterwards only overwritten
 * in place, so that saving needs no free space (a restore that fills the disk can still record how
 * far it got). It holds two slots; each save writes the older one with a higher sequence number and
 * a CRC and syncs it, so a crash mid-save leaves the other slot, the previous state, intact. The
 * file is locked while it is open ({@link ExclusiveUse}), so one restore at a time uses it.
 *
 * <p>Not thread-safe, with one exception: while the restoring thread marks chunks present, one
 * other thread at a time may {@link #save(BitSet) save} a {@link #snapshot()} the restoring thread
 * took (the restore's background checkpoint). The restoring thread hands the snapshot over and
 * waits for the save to end before it saves, deletes or closes the file itself.
 */
final class RestoreState implements AutoCloseable {
  /**
   * How often a restore syncs its target and saves: at most this much work is fetched again after a
   * crash or a cancel.
   */
  static final long CHECKPOINT_NANOS = java.util.concurrent.TimeUnit.SECONDS.toNanos(2);

  /**
   * A restore also checkpoints (once the previous checkpoint has ended) when it has written this
   * much since the last one began, so that the target's dirty pages never pile up for one long sync
   * at the end: the kernel starts writing back on its own only at a share of all memory.
   */
  static final long CHECKPOINT_BYTES = 64L << 20;

  private static final byte[] MAGIC = "THAWRST3".getBytes(StandardCharsets.US_ASCII);

  /** magic, index checksum, image size, chunk count, flags. */
  private static final int HEADER = 8 + 32 + 8 + 4 + 4;

  private static final int FLAG_HOLES_ARE_ZERO = 1;
  private static final int SLOT_HEADER = 8 + 4; // sequence, crc32c of the bitmap

  private final Path file;
  private final byte[] indexChecksum;
  private final long size;
  private final int chunks;
  private final BitSet present;
  private final int bitmapBytes;
  private boolean holesAreZero;
  private boolean resumed;
  private boolean initialised;
  private long sequence;
  private FileChannel channel;

  private RestoreState(
      Path file, byte[] indexChecksum, long size, int chunks, BitSet present, long sequence) {
    this.file = file;
    this.indexChecksum = indexChecksum.clone();
    this.size = size;
    this.chunks = chunks;
    this.present = present;
    this.bitmapBytes = (chunks + 7) / 8;
    this.sequence = sequence;
  }

  private long slotOffset(long seq) {
    return HEADER + (seq % 2) * (SLOT_HEADER + (long) bitmapBytes);
  }

  /** Bytes of a complete state file of this image. */
  private long fileSize() {
    return slotOffset(1) + SLOT_HEADER + bitmapBytes;
  }

  /**
   * Opens the state file of an image, creating it (empty) when there is none, and locks it for this
   * restore alone: a second restore with the same state file is refused, naming the pid that holds
   * it. An empty file means no progress yet, so that a crash right after the creation is harmless.
   * Refuses a state file of another image, or a damaged one.
   */
  static RestoreState open(Path file, byte[] indexChecksum, long size, int chunks)
      throws IOException {
    return open(file, indexChecksum, size, chunks, Channels.PLAIN);
  }

  /** {@link #open(Path, byte[], long, int)} through {@code channels}. */
  static RestoreState open(
      Path file, byte[] indexChecksum, long size, int chunks, Channels channels)
      throws IOException {
    Path dir = file.toAbsolutePath().getParent();
    if (dir != null) {
      Files.createDirectories(dir); // a device's state lives under ~/.local/state/thaw
    }
    FileChannel ch =
        channels.wrap(
            file,
            FileChannel.open(
                file,
                StandardOpenOption.CREATE,
                StandardOpenOption.READ,
                StandardOpenOption.WRITE));
    try {
      ExclusiveUse.lock(ch, file, "restore state");
      RestoreState st = new RestoreState(file, indexChecksum, size, chunks, new BitSet(chunks), 0);
      long length = ch.size();
      if (length > 0) {
        if (length > st.fileSize() + 4096) {
          throw new IOException(
              "restore state "
                  + file
                  + " is damaged or not a thaw state file"
                  + " ("
                  + length
                  + " bytes); delete it to start over");
        }
        ByteBuffer b = ByteBuffer.allocate((int) length);
        while (b.hasRemaining() && ch.read(b, b.position()) >= 0) {
          // read it whole
        }
        st.parse(b.array());
        st.resumed = true;
      }
      st.channel = ch;
      return st;
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
  }

  /** Reads a saved state: the header must name this image, one slot must be intact. */
  private void parse(byte[] data) throws IOException {
    if (data.length < HEADER || !Arrays.equals(MAGIC, 0, 8, data, 0, 8)) {
      throw new IOException(
          "restore state "
              + file
              + " is damaged or not a thaw state file; delete it to start over");
    }
    ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    byte[] csum = Arrays.copyOfRange(data, 8, 40);
    long s = b.getLong(40);
    int n = b.getInt(48);
    int flags = b.getInt(52);
    if (!MessageDigest.isEqual(csum, indexChecksum) || s != size || n != chunks) {
      throw new IOException(
          "restore state "
              + file
              + " belongs to a different image (size "
              + s
              + ", "
              + n
              + " chunks); refusing to resume. Delete it to start over.");
    }
    long bestSeq = -1;
    BitSet best = null;
    for (int slot = 0; slot < 2; slot++) {
      int off = (int) slotOffset(slot);
      if (data.length < off + SLOT_HEADER + bitmapBytes) {
        continue;
      }
      long seq = b.getLong(off);
      int crc = b.getInt(off + 8);
      CRC32C c = new CRC32C();
      c.update(data, off + SLOT_HEADER, bitmapBytes);
      if ((int) c.getValue() == crc && seq > bestSeq && seq % 2 == slot) {
        bestSeq = seq;
        best =
            BitSet.valueOf(
                Arrays.copyOfRange(data, off + SLOT_HEADER, off + SLOT_HEADER + bitmapBytes));
      }
    }
    if (best == null) {
      throw new IOException(
          "restore state " + file + " is damaged (no valid record); delete it to start over");
    }
    present.or(best);
    sequence = bestSeq;
    holesAreZero = (flags & FLAG_HOLES_ARE_ZERO) != 0;
  }

  /** Whether the file recorded an earlier restore of this image when it was opened. */
  boolean resumed() {
    return resumed;
  }

  /**
   * Whether the target was created by this restore, so that ranges not yet written read as zeros
   * (zero chunks need no writing, also after a resume). Set before the first save.
   */
  boolean holesAreZero() {
    return holesAreZero;
  }

  void setHolesAreZero(boolean v) {
    holesAreZero = v;
  }

  /** Whether chunk {@code chunk} is present in the target (recorded durably once saved). */
  boolean isPresent(int chunk) {
    return present.get(chunk);
  }

  /** Chunk {@code chunk} was written to the target; {@link #save} records it after a sync. */
  void markPresent(int chunk) {
    present.set(chunk);
  }

  Path file() {
    return file;
  }

  /** Gives the (locked) file its full size and header once, so that saves need no space. */
  private FileChannel channel() throws IOException {
    if (channel == null) {
      throw new IOException("restore state " + file + " is closed");
    }
    if (!initialised && channel.size() < fileSize()) {
      ByteBuffer h = ByteBuffer.allocate((int) fileSize()).order(ByteOrder.LITTLE_ENDIAN);
      h.put(MAGIC)
          .put(indexChecksum)
          .putLong(size)
          .putInt(chunks)
          .putInt(holesAreZero ? FLAG_HOLES_ARE_ZERO : 0);
      // slot 0 holds sequence 0 with an empty bitmap: nothing present yet
      CRC32C empty = new CRC32C();
      empty.update(new byte[bitmapBytes]);
      h.putLong((int) slotOffset(0), 0).putInt((int) slotOffset(0) + 8, (int) empty.getValue());
      h.rewind();
      writeFully(h, 0);
      channel.force(true);
    }
    initialised = true;
    return channel;
  }

  /** Writes the state durably. Call only after the chunks it records are durable. */
  void save() throws IOException {
    save(present);
  }

  /** The chunks present so far, for a later {@link #save(BitSet)}: a copy. */
  BitSet snapshot() {
    return (BitSet) present.clone();
  }

  /**
   * Writes {@code chunks} (a {@link #snapshot()}) durably as the chunks present. Call only after
   * those chunks are durable: take the snapshot before the target's sync starts.
   */
  void save(BitSet chunks) throws IOException {
    FileChannel ch = channel();
    long seq = sequence + 1;
    byte[] bits = Arrays.copyOf(chunks.toByteArray(), bitmapBytes);
    CRC32C c = new CRC32C();
    c.update(bits);
    ByteBuffer b = ByteBuffer.allocate(SLOT_HEADER + bitmapBytes).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(seq).putInt((int) c.getValue()).put(bits).flip();
    writeFully(b, slotOffset(seq));
    ch.force(false);
    sequence = seq;
  }

  private void writeFully(ByteBuffer b, long pos) throws IOException {
    while (b.hasRemaining()) {
      pos += channel.write(b, pos);
    }
  }

  /** Deletes the file (the restore is complete), then lets go of it. */
  void delete() throws IOException {
    try {
      Files.deleteIfExists(file);
    } finally {
      close();
    }
  }

  /**
   * Lets go of the file without using it; a file this open created and never saved to is removed,
   * so that a refused restore leaves nothing behind.
   */
  void abandon() throws IOException {
    if (!resumed && !initialised) {
      delete();
    } else {
      close();
    }
  }

  @Override
  public void close() throws IOException {
    if (channel != null) {
      channel.close();
      channel = null;
    }
  }
}
