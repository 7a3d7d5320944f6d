package dev.thaw.restore;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;

/**
 * Channels that log every write, sync and close of a restore's target and state file in one list,
 * in the order they happen, and can fail a write part way (a full disk, or a crash that tears a
 * write): what a test needs to check that data is durable before it is recorded.
 */
final class RecordingChannels implements Channels {
  enum Kind {
    WRITE,
    SYNC,
    CLOSE,
    DELETE
  }

  /**
   * One call: on the target or the state file, a write's position and length; a write of a state
   * slot carries the chunks it records as present ({@code chunks}, null for other writes), and a
   * state file closed once deleted ({@link Kind#DELETE}) says the restore completed. A write is
   * logged once it returned, a sync where it began.
   */
  record Event(boolean target, Kind kind, long position, int length, BitSet chunks) {
    /** Whether this write of the state records chunks as present. */
    boolean claims() {
      return chunks != null && !chunks.isEmpty();
    }

    boolean is(boolean onTarget, Kind k) {
      return target == onTarget && kind == k;
    }
  }

  /** Decides the fate of a write before it happens. */
  @FunctionalInterface
  interface Fault {
    /** Bytes of the write to let through before it fails, or -1 to let all of it through. */
    int allow(Event write);
  }

  /** The fixtures' chunk size: writes are mapped to the chunks they fall in. */
  private static final long CHUNK_SIZE = 4L << 20;

  private final Path target;
  private final List<Event> events = new ArrayList<>();
  private volatile Fault fault = e -> -1;

  /**
   * Records the channels of a restore into {@code target} of an image of 4 MiB chunks (the
   * fixtures'); every other file is its state file.
   */
  RecordingChannels(Path target) {
    this.target = target.toAbsolutePath();
  }

  void fault(Fault f) {
    fault = f;
  }

  private volatile long syncMillis;

  /** Makes each sync of the target take at least {@code millis} (a slow disk). */
  void slowSyncs(long millis) {
    syncMillis = millis;
  }

  synchronized List<Event> events() {
    return List.copyOf(events);
  }

  synchronized void clear() {
    events.clear();
  }

  private synchronized void log(Event e) {
    events.add(e);
  }

  /** Where an event logged now would go. */
  private synchronized int mark() {
    return events.size();
  }

  private synchronized void logAt(int at, Event e) {
    events.add(at, e);
  }

  /**
   * Checks that each record of chunks in the state file comes after a sync of the target that began
   * after the last write into each chunk it records, and that the state file is deleted only after
   * a sync that began after every write: a state never records data that a crash could lose, while
   * writes of other chunks may go on during a sync.
   */
  void assertSyncedBeforeEachRecord() {
    java.util.Map<Long, Integer> lastWrite = new java.util.HashMap<>();
    int lastAnyWrite = -1;
    int lastSync = -1;
    int records = 0;
    List<Event> ev = events();
    for (int n = 0; n < ev.size(); n++) {
      Event e = ev.get(n);
      if (e.is(true, Kind.WRITE) && e.length() > 0) {
        for (long c = e.position() / CHUNK_SIZE;
            c <= (e.position() + e.length() - 1) / CHUNK_SIZE;
            c++) {
          lastWrite.put(c, n);
        }
        lastAnyWrite = n;
      } else if (e.is(true, Kind.SYNC)) {
        lastSync = n;
      } else if (!e.target() && e.claims()) {
        for (int c = e.chunks().nextSetBit(0); c >= 0; c = e.chunks().nextSetBit(c + 1)) {
          if (lastWrite.getOrDefault((long) c, -1) > lastSync) {
            throw new AssertionError(
                "the state recorded chunk " + c + " before a sync of its last write: " + ev);
          }
        }
        records++;
      } else if (!e.target() && e.kind() == Kind.DELETE) {
        if (lastAnyWrite > lastSync) {
          throw new AssertionError("the state was deleted before a sync of every write: " + ev);
        }
        records++;
      }
    }
    if (records == 0) {
      throw new AssertionError("nothing was recorded: " + ev);
    }
  }

  @Override
  public FileChannel wrap(Path path, FileChannel channel) {
    return new Recording(path, channel);
  }

  /**
   * The chunks a write of the state file records as present: for a slot (after the header, which
   * the file's first write holds), its bitmap past the sequence and CRC; null for the header.
   */
  private static BitSet claims(ByteBuffer slot, long position) {
    if (position == 0) {
      return null;
    }
    ByteBuffer bits = slot.duplicate();
    bits.position(Math.min(bits.limit(), bits.position() + 12));
    return BitSet.valueOf(bits);
  }

  private final class Recording extends FileChannel {
    private final Path path;
    private final boolean onTarget;
    private final FileChannel ch;

    Recording(Path path, FileChannel ch) {
      this.path = path;
      this.onTarget = path.toAbsolutePath().equals(target);
      this.ch = ch;
    }

    @Override
    public int write(ByteBuffer src, long position) throws IOException {
      Event e =
          new Event(
              onTarget,
              Kind.WRITE,
              position,
              src.remaining(),
              onTarget ? null : claims(src, position));
      int allow = fault.allow(e);
      if (allow >= 0) {
        ByteBuffer part = src.duplicate();
        part.limit(part.position() + Math.min(allow, part.remaining()));
        while (part.hasRemaining()) {
          position += ch.write(part, position);
        }
        log(new Event(onTarget, Kind.WRITE, e.position(), allow, e.chunks()));
        throw new IOException("No space left on device");
      }
      int n = ch.write(src, position);
      log(new Event(onTarget, Kind.WRITE, position, n, e.chunks()));
      return n;
    }

    @Override
    public int write(ByteBuffer src) {
      throw new UnsupportedOperationException("write at the channel's position");
    }

    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
      throw new UnsupportedOperationException("gathering write");
    }

    @Override
    public void force(boolean metaData) throws IOException {
      // logged where it began (writes logged after that may not be covered), once it succeeded
      int at = mark();
      ch.force(metaData);
      if (onTarget && syncMillis > 0) {
        try {
          Thread.sleep(syncMillis);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new java.io.InterruptedIOException("sync interrupted");
        }
      }
      logAt(at, new Event(onTarget, Kind.SYNC, 0, 0, null));
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
      return ch.read(dst);
    }

    @Override
    public long read(ByteBuffer[] dsts, int offset, int length) throws IOException {
      return ch.read(dsts, offset, length);
    }

    @Override
    public int read(ByteBuffer dst, long position) throws IOException {
      return ch.read(dst, position);
    }

    @Override
    public long position() throws IOException {
      return ch.position();
    }

    @Override
    public FileChannel position(long newPosition) throws IOException {
      ch.position(newPosition);
      return this;
    }

    @Override
    public long size() throws IOException {
      return ch.size();
    }

    @Override
    public FileChannel truncate(long size) throws IOException {
      ch.truncate(size);
      return this;
    }

    @Override
    public long transferTo(long position, long count, WritableByteChannel target) {
      throw new UnsupportedOperationException("transferTo");
    }

    @Override
    public long transferFrom(ReadableByteChannel src, long position, long count) {
      throw new UnsupportedOperationException("transferFrom");
    }

    @Override
    public MappedByteBuffer map(MapMode mode, long position, long size) {
      throw new UnsupportedOperationException("map");
    }

    @Override
    public FileLock lock(long position, long size, boolean shared) throws IOException {
      return ch.lock(position, size, shared);
    }

    @Override
    public FileLock tryLock(long position, long size, boolean shared) throws IOException {
      return ch.tryLock(position, size, shared);
    }

    @Override
    protected void implCloseChannel() throws IOException {
      ch.close();
      log(
          new Event(
              onTarget, java.nio.file.Files.exists(path) ? Kind.CLOSE : Kind.DELETE, 0, 0, null));
    }
  }
}
