package dev.thaw.store;

import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;
import dev.thaw.format.Digest;
import dev.thaw.io.FileChannels;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * A datastore directory on a local filesystem. Writes go to a temporary file that is synced and
 * then renamed, so that a crash never leaves a partial chunk or snapshot behind.
 *
 * <p>Reads are bounded like an HTTP store's: a file larger than the caller's limit, or one that is
 * not a regular file (a FIFO, a device, a link to {@code /dev/zero}), is refused before it is read;
 * and a read that gets no data within the read timeout (a hung network filesystem) is given up as a
 * retryable fault. The read itself runs on a thread of this store, so that a read the kernel never
 * finishes strands that thread and not the caller. How files are made next to Proxmox Backup Server
 * (modes, owner, lock) is {@link LocalDatastore}'s. Thread-safe.
 */
final class LocalStore implements WritableStore {
  private final Path root;
  private final okio.Throttler throttler;
  private final ChunkLayout layout;
  private final Duration readTimeout;
  private final ExecutorService readers;
  private final LocalDatastore datastore;

  /**
   * @param throttler the process-wide rate limit for chunk reads, or null
   * @param layout where chunks live below the root
   * @param readTimeout how long one read may wait for the filesystem
   */
  LocalStore(Path root, okio.Throttler throttler, ChunkLayout layout, Duration readTimeout) {
    this(
        root,
        throttler,
        layout,
        readTimeout,
        LocalDatastore.forReading(root.toAbsolutePath().normalize()));
  }

  /**
   * A datastore opened for writing by {@link LocalDatastore#openForWriting}; closed with this
   * store.
   */
  LocalStore(
      Path root,
      okio.Throttler throttler,
      ChunkLayout layout,
      Duration readTimeout,
      LocalDatastore datastore) {
    this.datastore = datastore;
    this.root = root.toAbsolutePath().normalize();
    this.throttler = throttler;
    this.layout = layout;
    this.readTimeout = readTimeout;
    AtomicInteger n = new AtomicInteger();
    this.readers =
        Executors.newCachedThreadPool(
            r -> {
              Thread t = new Thread(r, "thaw-local-read-" + n.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
  }

  private Path chunkFile(Digest digest) {
    return root.resolve(layout.path(digest));
  }

  @Override
  public byte[] readChunk(Digest digest, int maxBytes) throws IOException {
    return readChunk(digest, maxBytes, null).array();
  }

  /**
   * The chunk file read into a buffer of {@code pool} of its length (null: an array of exactly that
   * length), on this store's threads as every read.
   */
  @Override
  public Buffer readChunk(Digest digest, int maxBytes, BufferPool pool) throws IOException {
    Path p = chunkFile(digest);
    return readWithin(
        p,
        "chunk " + digest.hex(),
        () -> read(p, "chunk " + digest.hex(), maxBytes, pool, throttler));
  }

  @Override
  public byte[] readFile(SnapshotPath snapshot, String file) throws IOException {
    Path p = snapshotDir(snapshot).resolve(SnapshotPath.checkFileName(file));
    return readWithin(p, file, () -> read(p, file, MAX_FILE_BYTES));
  }

  /**
   * {@code read} on one of this store's threads, given up after the read timeout. A read given up
   * still owns the buffer it took (it may still be filling it): it gives it back itself if it then
   * fails, and if it succeeds late, its result goes to the garbage collector unread.
   */
  private <T> T readWithin(Path p, String what, java.util.concurrent.Callable<T> read)
      throws IOException {
    Future<T> f;
    try {
      f = readers.submit(read);
    } catch (RejectedExecutionException e) {
      throw new StoreException(what + ": the store " + root + " is closed", false, e);
    }
    try {
      return f.get(readTimeout.toNanos(), TimeUnit.NANOSECONDS);
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof IOException io) {
        throw io;
      }
      throw new StoreException(what + ": cannot read " + p + ": " + c, false, c);
    } catch (TimeoutException e) {
      f.cancel(true);
      throw new StoreException(
          what
              + ": no data from "
              + p
              + " within "
              + readTimeout.toSeconds()
              + " s (is the filesystem hung?)",
          true);
    } catch (InterruptedException e) {
      f.cancel(true);
      Thread.currentThread().interrupt();
      throw new InterruptedIOException(what + ": interrupted reading " + p);
    }
  }

  /**
   * Reads a whole regular file of at most {@code maxBytes} bytes. A missing one is a {@link
   * NotFoundException}, a larger one or one that is not a regular file a {@link StoreException}
   * that no retry mends; each names {@code what} and the path.
   */
  static byte[] read(Path p, String what, long maxBytes) throws IOException {
    Buffer b = read(p, what, maxBytes, null, null);
    return b.array();
  }

  /**
   * {@link #read(Path, String, long)} into a buffer of {@code pool} (null: an array of the file's
   * exact length), through {@code throttler} when there is one. The buffer goes back to the pool
   * when the read fails.
   */
  private static Buffer read(
      Path p, String what, long maxBytes, BufferPool pool, okio.Throttler throttler)
      throws IOException {
    try {
      BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class);
      if (!a.isRegularFile()) {
        throw new StoreException(
            what
                + ": "
                + p
                + " is not a regular file ("
                + (a.isDirectory() ? "a directory" : "a FIFO, device or socket")
                + ")",
            false);
      }
      try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
        long size = ch.size();
        if (size > maxBytes) {
          throw new StoreException(
              what
                  + ": "
                  + p
                  + " holds "
                  + size
                  + " bytes, more than the "
                  + maxBytes
                  + " it can have; the file is damaged",
              false);
        }
        Buffer b = pool != null ? pool.take((int) size) : Buffer.wrap(new byte[(int) size]);
        boolean ok = false;
        try {
          if (throttler == null) {
            FileChannels.read(ch, 0, b.array(), 0, (int) size);
          } else {
            try (okio.BufferedSource s =
                okio.Okio.buffer(
                    throttler.source(
                        okio.Okio.source(java.nio.channels.Channels.newInputStream(ch))))) {
              Sources.readFully(s, b.array(), 0, (int) size);
            }
          }
          ok = true;
          return b;
        } catch (java.io.EOFException e) {
          throw new StoreException(what + ": " + p + " shrank while it was read", true);
        } finally {
          if (!ok) {
            b.release();
          }
        }
      }
    } catch (NoSuchFileException e) {
      throw new NotFoundException(what + " not found: " + p);
    } catch (AccessDeniedException e) {
      throw new StoreException(what + ": permission denied: " + p, false, e);
    } catch (StoreException e) {
      throw e;
    } catch (IOException e) {
      throw new StoreException(what + ": cannot read " + p + ": " + e.getMessage(), false, e);
    }
  }

  @Override
  public List<SnapshotPath> listSnapshots() throws IOException {
    if (!Files.isDirectory(root)) {
      throw new NotFoundException("datastore not found: " + root);
    }
    return SnapshotLister.list(
        rel -> {
          List<SnapshotLister.Entry> entries = new ArrayList<>();
          Path dir = rel.isEmpty() ? root : root.resolve(rel);
          try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) {
              entries.add(
                  new SnapshotLister.Entry(p.getFileName().toString(), Files.isDirectory(p)));
            }
          } catch (NoSuchFileException e) {
            return List.of();
          } catch (AccessDeniedException e) {
            // no retry mends a permission: say so at once, naming the directory
            throw new StoreException(
                "cannot list the datastore: permission denied: " + dir, false, e);
          } catch (IOException e) {
            throw new StoreException(
                "cannot list the datastore directory " + dir + ": " + e, false, e);
          }
          return entries;
        });
  }

  @Override
  public String location(Digest digest) {
    return chunkFile(digest).toString();
  }

  @Override
  public String location(SnapshotPath snapshot, String file) {
    return snapshotDir(snapshot).resolve(file).toString();
  }

  @Override
  public String describe() {
    return root.toString();
  }

  @Override
  public boolean hasChunk(Digest digest) {
    return Files.exists(chunkFile(digest));
  }

  @Override
  public void writeChunk(Digest digest, byte[] blob) throws IOException {
    Path target = chunkFile(digest);
    datastore.createDirectories(target.getParent());
    datastore.writeAtomically(target, blob);
  }

  @Override
  public boolean ensureGroupOwner(SnapshotPath snapshot, String authId) throws IOException {
    Path group = snapshotDir(snapshot).getParent();
    datastore.createDirectories(group);
    return datastore.writeIfAbsent(
        group.resolve(GROUP_OWNER_FILE),
        (authId + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8));
  }

  @Override
  public SnapshotWriter createSnapshot(SnapshotPath snapshot) throws IOException {
    Path dir = snapshotDir(snapshot);
    datastore.createDirectories(dir.getParent());
    Path tmp =
        dir.resolveSibling(
            ".tmp-"
                + snapshot.timeString()
                + "-"
                + Long.toHexString(ThreadLocalRandom.current().nextLong()));
    Files.createDirectory(tmp);
    datastore.adoptDirectory(tmp);
    return new SnapshotWriter() {
      private boolean committed;

      @Override
      public void writeFile(String name, byte[] data) throws IOException {
        datastore.writeAtomically(tmp.resolve(SnapshotPath.checkFileName(name)), data);
      }

      @Override
      public void commit() throws IOException {
        if (Files.exists(dir)) {
          throw new FileAlreadyExistsException(dir.toString(), null, "snapshot exists");
        }
        Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
        LocalDatastore.syncDirectory(dir.getParent());
        committed = true;
      }

      @Override
      public void close() throws IOException {
        if (!committed && Files.exists(tmp)) {
          try (Stream<Path> s = Files.walk(tmp)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
              Files.deleteIfExists(p);
            }
          }
        }
      }
    };
  }

  private Path snapshotDir(SnapshotPath s) {
    Path dir = root;
    for (String n : s.namespace()) {
      dir = dir.resolve("ns").resolve(n);
    }
    dir = dir.resolve(s.type()).resolve(s.id()).resolve(s.timeString()).normalize();
    if (!dir.startsWith(root)) {
      throw new IllegalArgumentException("snapshot path leaves the datastore: " + s);
    }
    return dir;
  }

  @Override
  public void close() throws IOException {
    readers.shutdownNow();
    datastore.close();
  }
}
