package dev.thaw.store;

import dev.thaw.format.Digest;
import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Stream;

/**
 * A datastore directory on a local filesystem. Writes go to a temporary file that is synced and
 * then renamed, so that a crash never leaves a partial chunk or snapshot behind; how files are
 * made next to Proxmox Backup Server (modes, owner, lock) is {@link LocalDatastore}'s. Thread-safe.
 */
final class LocalStore implements WritableStore {
  private final Path root;
  private final okio.Throttler throttler;
  private final ChunkLayout layout;
  private final LocalDatastore datastore;

  /**
   * @param throttler the process-wide rate limit for chunk reads, or null
   * @param layout where chunks live below the root
   */
  LocalStore(Path root, okio.Throttler throttler, ChunkLayout layout) {
    this(root, throttler, layout, LocalDatastore.forReading(root.toAbsolutePath().normalize()));
  }

  /** A datastore opened for writing by {@link LocalDatastore#openForWriting}; closed with this store. */
  LocalStore(Path root, okio.Throttler throttler, ChunkLayout layout, LocalDatastore datastore) {
    this.root = root.toAbsolutePath().normalize();
    this.throttler = throttler;
    this.layout = layout;
    this.datastore = datastore;
  }

  LocalStore(Path root, okio.Throttler throttler) {
    this(root, throttler, ChunkLayout.DATASTORE);
  }

  LocalStore(Path root) {
    this(root, null);
  }

  private Path chunkFile(Digest digest) {
    return root.resolve(layout.path(digest));
  }

  @Override
  public byte[] readChunk(Digest digest) throws IOException {
    byte[] blob = read(chunkFile(digest), "chunk " + digest.hex());
    if (throttler == null) {
      return blob;
    }
    try (okio.BufferedSource s = okio.Okio.buffer(throttler.source(new okio.Buffer().write(blob)))) {
      return s.readByteArray();
    }
  }

  @Override
  public byte[] readFile(SnapshotPath snapshot, String file) throws IOException {
    return read(snapshotDir(snapshot).resolve(checkFileName(file)), file);
  }

  /** Reads a whole file; a missing one is a {@link NotFoundException} naming {@code what} and the path. */
  static byte[] read(Path p, String what) throws IOException {
    try {
      return Files.readAllBytes(p);
    } catch (NoSuchFileException e) {
      throw new NotFoundException(what + " not found: " + p);
    } catch (AccessDeniedException e) {
      throw new StoreException(what + ": permission denied: " + p, false, e);
    } catch (IOException e) {
      throw new StoreException(what + ": cannot read " + p + ": " + e.getMessage(), false, e);
    }
  }

  @Override
  public List<SnapshotPath> listSnapshots() throws IOException {
    if (!Files.isDirectory(root)) {
      throw new NotFoundException("datastore not found: " + root);
    }
    return SnapshotLister.list(rel -> {
      List<SnapshotLister.Entry> entries = new ArrayList<>();
      Path dir = rel.isEmpty() ? root : root.resolve(rel);
      try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
        for (Path p : ds) {
          entries.add(new SnapshotLister.Entry(p.getFileName().toString(), Files.isDirectory(p)));
        }
      } catch (NoSuchFileException e) {
        return List.of();
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
    return datastore.writeIfAbsent(group.resolve(GROUP_OWNER_FILE),
        (authId + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8));
  }

  @Override
  public SnapshotWriter createSnapshot(SnapshotPath snapshot) throws IOException {
    Path dir = snapshotDir(snapshot);
    datastore.createDirectories(dir.getParent());
    Path tmp = dir.resolveSibling(".tmp-" + snapshot.timeString() + "-"
        + Long.toHexString(ThreadLocalRandom.current().nextLong()));
    Files.createDirectory(tmp);
    datastore.adoptDirectory(tmp);
    return new SnapshotWriter() {
      private boolean committed;

      @Override
      public void writeFile(String name, byte[] data) throws IOException {
        datastore.writeAtomically(tmp.resolve(checkFileName(name)), data);
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

  static String checkFileName(String file) {
    if (file.isEmpty() || file.contains("/") || file.contains("\\") || file.startsWith(".")) {
      throw new IllegalArgumentException("bad snapshot file name: " + file);
    }
    return file;
  }

  @Override
  public void close() throws IOException {
    datastore.close();
  }
}
