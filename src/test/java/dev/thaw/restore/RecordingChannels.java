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
   * One call: on the target or the state file, a write's position and length; a write of the state
   * that records chunks present "claims" them, and a state file closed once deleted ({@link
   * Kind#DELETE}) says the restore completed.
   */
  record Event(boolean target, Kind kind, long position, int length, boolean claims) {
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

  private final Path target;
  private final List<Event> events = new ArrayList<>();
  private volatile Fault fault = e -> -1;

  /** Records the channels of a restore into {@code target}; every other file is its state file. */
  RecordingChannels(Path target) {
    this.target = target.toAbsolutePath();
  }

  void fault(Fault f) {
    fault = f;
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

  /**
   * Checks that the target was synced after its last write before each record of chunks in the
   * state file and before its deletion: a state never records data that a crash could lose.
   */
  void assertSyncedBeforeEachRecord() {
    boolean dirty = false;
    int records = 0;
    for (Event e : events()) {
      if (e.is(true, Kind.WRITE)) {
        dirty = true;
      } else if (e.is(true, Kind.SYNC)) {
        dirty = false;
      } else if (!e.target() && (e.claims() || e.kind() == Kind.DELETE)) {
        if (dirty) {
          throw new AssertionError(
              "the state recorded chunks after unsynced target writes: " + events());
        }
        records++;
      }
    }
    if (records == 0) {
      throw new AssertionError("nothing was recorded: " + events());
    }
  }

  @Override
  public FileChannel wrap(Path path, FileChannel channel) {
    return new Recording(path, channel);
  }

  /**
   * Whether a write of the state file records chunks: a slot (after the header, which the file's
   * first write holds) whose bitmap, past the sequence and CRC, has a bit set.
   */
  private static boolean claims(ByteBuffer slot, long position) {
    if (position == 0) {
      return false;
    }
    for (int i = slot.position() + 12; i < slot.limit(); i++) {
      if (slot.get(i) != 0) {
        return true;
      }
    }
    return false;
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
              onTarget, Kind.WRITE, position, src.remaining(), !onTarget && claims(src, position));
      int allow = fault.allow(e);
      if (allow >= 0) {
        ByteBuffer part = src.duplicate();
        part.limit(part.position() + Math.min(allow, part.remaining()));
        while (part.hasRemaining()) {
          position += ch.write(part, position);
        }
        log(new Event(onTarget, Kind.WRITE, e.position(), allow, e.claims()));
        throw new IOException("No space left on device");
      }
      int n = ch.write(src, position);
      log(new Event(onTarget, Kind.WRITE, position, n, e.claims()));
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
      ch.force(metaData);
      log(new Event(onTarget, Kind.SYNC, 0, 0, false));
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
              onTarget, java.nio.file.Files.exists(path) ? Kind.CLOSE : Kind.DELETE, 0, 0, false));
    }
  }
}
