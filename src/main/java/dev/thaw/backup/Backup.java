package dev.thaw.backup;

import dev.thaw.crypto.CryptConfig;
import dev.thaw.format.BlobCodec;
import dev.thaw.format.Digest;
import dev.thaw.format.FixedIndex;
import dev.thaw.format.Manifest;
import dev.thaw.io.BlockDevices;
import dev.thaw.store.SnapshotPath;
import dev.thaw.store.WritableStore;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;

/**
 * Backs up files or block devices as fixed-index images into a datastore, as Proxmox Backup
 * Server's client would: each source is read in 4 MiB chunks by the calling thread; hashing, the
 * existence check, compression, encryption and the atomic chunk write run on a pool (a bounded
 * number of chunks in memory). Only chunks the store lacks are written. A new group gets an owner
 * file; the indexes and the manifest are written last, and the snapshot becomes visible in one
 * rename. With crypt-mode {@code encrypt} chunks are encrypted under keyed digests; with {@code
 * sign-only} they are stored plain under SHA-256 digests and the key only signs the manifest. An
 * empty source is refused (PBS neither writes nor opens a size-0 image). One {@link #run} per
 * instance.
 */
public final class Backup {
  private static final Pattern ARCHIVE = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9._-]{0,200}\\.img");

  /**
   * A Proxmox auth id: {@code user@realm} or {@code user@realm!token} (pbs-api-types {@code
   * PROXMOX_AUTH_ID_REGEX}, realm 3-32 characters, 64 at most in all).
   */
  private static final Pattern AUTH_ID =
      Pattern.compile(
          "[^\\s:/\\p{Cntrl}!@]+@[A-Za-z0-9_][A-Za-z0-9._-]{2,31}(![A-Za-z0-9_][A-Za-z0-9._-]*)?");

  /** The owner PBS gives a group made by root's backups. */
  public static final String DEFAULT_OWNER = "root@pam";

  /**
   * How a backup is protected and who owns a new group.
   *
   * @param key the key, or null for crypt-mode {@code none}
   * @param cryptMode {@code none} without a key; {@code encrypt} or {@code sign-only} with one
   * @param owner the auth id a new group's owner file names, e.g. {@code root@pam}
   */
  public record Options(CryptConfig key, Manifest.CryptMode cryptMode, String owner) {
    public Options {
      if ((key == null) != (cryptMode == Manifest.CryptMode.NONE)) {
        throw new IllegalArgumentException(
            key == null
                ? "crypt-mode " + cryptMode.json() + " needs a key file (--keyfile)"
                : "a key file was given with crypt-mode none; leave out --keyfile, or use encrypt or sign-only");
      }
      if (owner.length() > 64 || !AUTH_ID.matcher(owner).matches()) {
        throw new IllegalArgumentException(
            "bad owner '"
                + owner
                + "': give a Proxmox auth id such as root@pam or backup@pbs!token");
      }
    }

    /** Encrypted with {@code key}, or plain without one; owned by {@value #DEFAULT_OWNER}. */
    public static Options of(CryptConfig key) {
      return new Options(
          key, key == null ? Manifest.CryptMode.NONE : Manifest.CryptMode.ENCRYPT, DEFAULT_OWNER);
    }
  }

  /** One image to back up. */
  public record Source(String archive, Path path) {
    public Source {
      if (!ARCHIVE.matcher(archive).matches()) {
        throw new IllegalArgumentException(
            "bad archive name '"
                + archive
                + "': use letters, digits, '.', '_' or '-', ending in .img");
      }
    }

    /** Parses {@code [NAME.img:]PATH}; the default name is the file name, with .img added. */
    public static Source parse(String spec) {
      int colon = spec.indexOf(':');
      if (colon > 0) {
        String name = spec.substring(0, colon);
        if (ARCHIVE.matcher(name.endsWith(".img") ? name : name + ".img").matches()
            && !name.contains("/")) {
          return new Source(
              name.endsWith(".img") ? name : name + ".img", Path.of(spec.substring(colon + 1)));
        }
      }
      Path p = Path.of(spec);
      String base = p.getFileName() == null ? "" : p.getFileName().toString();
      return new Source(base.endsWith(".img") ? base : base + ".img", p);
    }
  }

  /** What a backup wrote. */
  public record Result(
      SnapshotPath snapshot, long bytes, int chunks, int written, long writtenBytes) {}

  private final WritableStore store;
  private final String type;
  private final String id;
  private final Options options;
  private final BlobCodec codec;
  private final int threads;
  private final dev.thaw.fetch.RetryPolicy retry = dev.thaw.fetch.RetryPolicy.defaults();

  /**
   * @param threads worker threads for hashing, compressing and writing
   */
  public Backup(WritableStore store, String type, String id, Options options, int threads) {
    this.store = store;
    this.type = type;
    this.id = id;
    this.options = options;
    this.codec =
        new BlobCodec(options.cryptMode() == Manifest.CryptMode.ENCRYPT ? options.key() : null);
    this.threads = Math.max(1, threads);
  }

  public Result run(List<Source> sources) throws IOException, InterruptedException {
    Set<String> names = new HashSet<>();
    List<Long> sizes = new ArrayList<>();
    for (Source s : sources) {
      if (!names.add(s.archive())) {
        throw new IllegalArgumentException(
            "two sources have the archive name " + s.archive() + "; name them with NAME.img:PATH");
      }
      sizes.add(sizeOf(s.path()));
    }
    ExecutorService pool =
        Executors.newFixedThreadPool(
            threads,
            r -> {
              Thread t = new Thread(r, "thaw-backup");
              t.setDaemon(true);
              return t;
            });
    try {
      long now = Instant.now().getEpochSecond();
      ConcurrentHashMap<Digest, Boolean> known = new ConcurrentHashMap<>();
      AtomicInteger written = new AtomicInteger();
      AtomicLong writtenBytes = new AtomicLong();
      List<Manifest.FileInfo> files = new ArrayList<>();
      List<byte[]> indexes = new ArrayList<>();
      long total = 0;
      int chunks = 0;
      for (int i = 0; i < sources.size(); i++) {
        Source s = sources.get(i);
        FixedIndex idx = backupOne(s, sizes.get(i), pool, known, written, writtenBytes, now);
        byte[] bytes = idx.toBytes();
        indexes.add(bytes);
        files.add(
            new Manifest.FileInfo(
                s.archive() + ".fidx", options.cryptMode(), idx.size(), idx.checksum()));
        total += idx.size();
        chunks += idx.chunkCount();
      }
      SnapshotPath snap = commit(files, indexes, now);
      return new Result(snap, total, chunks, written.get(), writtenBytes.get());
    } finally {
      pool.shutdownNow();
    }
  }

  /** A source's size; an empty or missing one is refused before anything is written. */
  private static long sizeOf(Path p) throws IOException {
    if (!Files.exists(p)) {
      throw new IOException("source " + p + " does not exist");
    }
    long size = BlockDevices.isBlockDevice(p) ? BlockDevices.size(p) : Files.size(p);
    if (size < 0) {
      throw new IOException("cannot tell the size of " + p);
    }
    if (size == 0) {
      throw new IOException(
          "source "
              + p
              + " is empty (0 bytes): there is no image to back up,"
              + " and Proxmox Backup Server cannot open an empty one");
    }
    return size;
  }

  private FixedIndex backupOne(
      Source s,
      long size,
      ExecutorService pool,
      ConcurrentHashMap<Digest, Boolean> known,
      AtomicInteger written,
      AtomicLong writtenBytes,
      long now)
      throws IOException, InterruptedException {
    Path p = s.path();
    int cs = FixedIndex.DEFAULT_CHUNK_SIZE;
    int count = (int) ((size + cs - 1) / cs);
    Digest[] digests = new Digest[count];
    Semaphore inMemory = new Semaphore(threads * 2);
    List<Future<?>> tasks = new ArrayList<>(count);
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
      for (int i = 0; i < count; i++) {
        int len = (int) Math.min(cs, size - (long) i * cs);
        byte[] buf = new byte[len];
        ByteBuffer b = ByteBuffer.wrap(buf);
        long pos = (long) i * cs;
        while (b.hasRemaining()) {
          int n = ch.read(b, pos + b.position());
          if (n < 0) {
            throw new IOException(
                "source " + p + " ended at " + (pos + b.position()) + " bytes, expected " + size);
          }
        }
        inMemory.acquire();
        final int idx = i;
        tasks.add(
            pool.submit(
                () -> {
                  try {
                    Digest d = codec.digest(buf, 0, len);
                    digests[idx] = d;
                    // uploads to a remote store (S3) meet the same transient faults as fetches
                    if (known.putIfAbsent(d, Boolean.TRUE) == null
                        && !retry.call(() -> store.hasChunk(d))) {
                      byte[] blob = codec.encode(buf, 0, len, true);
                      retry.call(
                          () -> {
                            store.writeChunk(d, blob);
                            return null;
                          });
                      written.incrementAndGet();
                      writtenBytes.addAndGet(blob.length);
                    }
                    return null;
                  } finally {
                    inMemory.release();
                  }
                }));
      }
      for (Future<?> f : tasks) {
        f.get();
      }
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      throw c instanceof IOException io
          ? io
          : new IOException("backup of " + p + " failed: " + c, c);
    }
    return FixedIndex.of(size, cs, digests, UUID.randomUUID(), now);
  }

  private SnapshotPath commit(List<Manifest.FileInfo> files, List<byte[]> indexes, long now)
      throws IOException, InterruptedException {
    for (int attempt = 0; ; attempt++) {
      long time = now + attempt;
      SnapshotPath snap = new SnapshotPath(List.of(), type, id, Instant.ofEpochSecond(time));
      if (attempt == 0) {
        retry.call(() -> store.ensureGroupOwner(snap, options.owner()));
      }
      Manifest m = new Manifest(type, id, time, files, null);
      try (WritableStore.SnapshotWriter w = store.createSnapshot(snap)) {
        for (int i = 0; i < files.size(); i++) {
          w.writeFile(files.get(i).filename(), indexes.get(i));
        }
        byte[] json = m.toJson(options.key()); // signed with the key, whatever the crypt-mode
        w.writeFile(Manifest.FILE_NAME, new BlobCodec(null).encode(json, 0, json.length, true));
        w.commit();
        return snap;
      } catch (FileAlreadyExistsException e) {
        if (attempt >= 10) {
          throw e;
        }
      }
    }
  }
}
