package dev.thaw.store;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * How a backup writes into a local datastore directory without harming the Proxmox Backup Server
 * that may manage it ({@code pbs-datastore/src/chunk_store.rs}):
 *
 * <ul>
 *   <li>A datastore of this user's without a {@code .lock} (a new one, or one an earlier thaw
 *       wrote) gets what PBS makes at its root: an empty {@code .lock} (mode 0644) and {@code
 *       .chunks} (0750) in a root of 0755; prefix directories ({@code .chunks/XXXX}, 0750) are made
 *       as chunks need them. PBS makes all 65536 of them when it creates a datastore and needs them
 *       all to adopt one; with {@code fullLayout} they are all made (or completed) now. That is not
 *       the default: on ext4 they take 256 MiB and seconds to make and to delete.
 *   <li>A datastore whose {@code .lock} or {@code .chunks} belongs to another user is managed by a
 *       PBS (its {@code backup} user). Files written as this user would break it: PBS's garbage
 *       collection touches every chunk in use ({@code utimensat}), fails with EPERM on a chunk it
 *       does not own, and stops cleaning the datastore. Such a datastore is refused, unless the
 *       caller asks to write as its owner (root only): then every file and directory written gets
 *       the datastore's user and group.
 *   <li>Files get PBS's modes (directories 0755, {@code .chunks} and its prefix directories 0750,
 *       files 0644), and while the datastore is open PBS's chunk-store lock is held shared (an
 *       fcntl read lock on {@code .lock}, as PBS's backup sessions hold it), so that a PBS garbage
 *       collection, which needs it exclusively, cannot run meanwhile; one that is running makes
 *       opening fail.
 * </ul>
 *
 * <p>Thread-safe; {@link #close()} releases the lock. POSIX record locks belong to the process: a
 * second datastore open on the same directory in one process shares the first one's lock, and
 * closing either releases it.
 */
final class LocalDatastore implements Closeable {
  static final String LOCK_FILE = ".lock";
  static final String CHUNK_DIR = ".chunks";
  private static final int PREFIXES = 1 << 16;
  private static final Set<PosixFilePermission> DIR_MODE =
      PosixFilePermissions.fromString("rwxr-xr-x");
  private static final Set<PosixFilePermission> CHUNK_DIR_MODE =
      PosixFilePermissions.fromString("rwxr-x---");
  private static final Set<PosixFilePermission> FILE_MODE =
      PosixFilePermissions.fromString("rw-r--r--");

  private final Path root;

  /** The user and group written files get, or -1 to keep this process's. */
  private final int uid;

  private final int gid;

  /** The open {@code .lock} whose shared lock this datastore holds, or null. */
  private final FileChannel lockFile;

  private LocalDatastore(Path root, int uid, int gid, FileChannel lockFile) {
    this.root = root;
    this.uid = uid;
    this.gid = gid;
    this.lockFile = lockFile;
  }

  /** Files made as this process makes them, no lock held: for a store opened to read. */
  static LocalDatastore forReading(Path root) {
    return new LocalDatastore(root, -1, -1, null);
  }

  /**
   * Opens a datastore for a backup: creates or completes PBS's layout in a datastore of this
   * user's, refuses one that a PBS manages unless {@code asOwner}, and takes PBS's shared lock.
   *
   * @throws StoreException when the datastore is managed by a PBS (and not {@code asOwner}), or its
   *     garbage collection holds the lock
   */
  static LocalDatastore openForWriting(Path root, WriteOptions options) throws IOException {
    root = root.toAbsolutePath().normalize();
    boolean asOwner = options.asDatastoreOwner();
    Path lockPath = root.resolve(LOCK_FILE);
    Path chunks = root.resolve(CHUNK_DIR);
    int me = ownerOf(Path.of("/proc/self"));
    Path foreign =
        Files.exists(lockPath) && ownerOf(lockPath) != me
            ? lockPath
            : Files.isDirectory(chunks) && ownerOf(chunks) != me ? chunks : null;
    int uid = -1;
    int gid = -1;
    if (foreign != null) {
      String who = Files.getOwner(foreign, LinkOption.NOFOLLOW_LINKS).getName();
      if (!asOwner) {
        throw new StoreException(
            "refusing to write into "
                + root
                + ": a Proxmox Backup Server manages"
                + " it (its "
                + foreign.getFileName()
                + " belongs to user "
                + who
                + ", not to this user)."
                + " Chunks written by this user would stop that server's garbage collection (it cannot"
                + " touch them) and the datastore would no longer be cleaned. Back up into that server"
                + " with proxmox-backup-client, or into another datastore directory; or, as root, add"
                + " --as-datastore-owner to write as "
                + who
                + " with the server's lock held. Reading"
                + " it (ls, restore, mount, verify) is always safe",
            false);
      }
      if (me != 0) {
        throw new StoreException(
            "cannot write into " + root + " as its owner " + who + ": that needs root", false);
      }
      uid = ownerOf(foreign);
      gid =
          ((Number) Files.getAttribute(foreign, "unix:gid", LinkOption.NOFOLLOW_LINKS)).intValue();
    }
    if (foreign == null && (options.fullLayout() || !Files.exists(lockPath))) {
      // new, or written by an earlier thaw: what PBS has at a datastore's root
      createLayout(root, options.fullLayout());
    }
    FileChannel ch = null;
    FileLock held = null;
    if (Files.exists(lockPath)) {
      ch = FileChannel.open(lockPath, StandardOpenOption.READ);
      boolean ours = false;
      try {
        held = ch.tryLock(0, Long.MAX_VALUE, true);
      } catch (OverlappingFileLockException e) {
        ours = true; // this process holds it already (another store open on the same datastore)
      } catch (IOException e) {
        ch.close();
        throw e;
      }
      if (held == null && !ours) {
        ch.close();
        throw new StoreException(
            "cannot write into "
                + root
                + ": another process holds its lock "
                + lockPath
                + " exclusively (a Proxmox Backup Server garbage collection runs); try again"
                + " when it has finished",
            true);
      }
    }
    return new LocalDatastore(root, uid, gid, ch);
  }

  /**
   * The layout PBS creates ({@code ChunkStore::create}), made by this user; the 65536 prefix
   * directories only with {@code prefixes}. Completes a layout made in part before.
   */
  private static void createLayout(Path root, boolean prefixes) throws IOException {
    LocalDatastore own = forReading(root);
    if (!Files.exists(root)) {
      Files.createDirectories(root);
      Files.setPosixFilePermissions(root, DIR_MODE);
    }
    Path chunks = root.resolve(CHUNK_DIR);
    own.createDirectories(chunks);
    Files.setPosixFilePermissions(chunks, CHUNK_DIR_MODE);
    for (int i = 0; prefixes && i < PREFIXES; i++) {
      Path p = chunks.resolve(String.format("%04x", i));
      try {
        Files.createDirectory(p);
      } catch (FileAlreadyExistsException e) {
        // made before (an interrupted creation, or chunks written by an earlier thaw)
      }
      Files.setPosixFilePermissions(p, CHUNK_DIR_MODE);
    }
    Path lock = root.resolve(LOCK_FILE);
    if (!Files.exists(lock)) {
      own.writeAtomically(lock, new byte[0]); // last: the layout is complete once it is there
    }
  }

  private static int ownerOf(Path p) throws IOException {
    return ((Number) Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS)).intValue();
  }

  /**
   * Creates {@code dir} and its missing parents below the root, each with PBS's mode ({@code
   * .chunks} and its prefix directories 0750, others 0755) and the datastore's owner.
   */
  void createDirectories(Path dir) throws IOException {
    if (Files.isDirectory(dir)) {
      return;
    }
    Path parent = dir.getParent();
    if (parent != null && dir.startsWith(root) && !dir.equals(root)) {
      createDirectories(parent);
    } else {
      Files.createDirectories(dir);
      return;
    }
    try {
      Files.createDirectory(dir);
    } catch (FileAlreadyExistsException e) {
      return; // made by another thread meanwhile
    }
    adopt(dir, isChunkDir(dir) ? CHUNK_DIR_MODE : DIR_MODE);
  }

  /** Gives a new directory (a snapshot's temporary directory) PBS's mode and the owner. */
  void adoptDirectory(Path dir) throws IOException {
    adopt(dir, DIR_MODE);
  }

  private boolean isChunkDir(Path dir) {
    Path chunks = root.resolve(CHUNK_DIR);
    return dir.equals(chunks) || chunks.equals(dir.getParent());
  }

  private void adopt(Path p, Set<PosixFilePermission> mode) throws IOException {
    Files.setPosixFilePermissions(p, mode);
    if (uid >= 0) {
      Files.setAttribute(p, "unix:uid", uid, LinkOption.NOFOLLOW_LINKS);
      Files.setAttribute(p, "unix:gid", gid, LinkOption.NOFOLLOW_LINKS);
    }
  }

  /**
   * Writes a temporary sibling (mode 0644, the datastore's owner), syncs it and renames it over
   * {@code target}: readers see the whole file or none.
   */
  void writeAtomically(Path target, byte[] data) throws IOException {
    Path tmp = writeTemporary(target, data);
    try {
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /**
   * Writes {@code target} like {@link #writeAtomically} unless it exists; never replaces it.
   *
   * @return whether this call wrote it
   */
  boolean writeIfAbsent(Path target, byte[] data) throws IOException {
    if (Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
      return false;
    }
    Path tmp = writeTemporary(target, data);
    try {
      try {
        // a hard link fails if the target exists, where a rename would replace it
        Files.createLink(target, tmp);
      } catch (FileAlreadyExistsException e) {
        return false;
      } catch (IOException | UnsupportedOperationException e) {
        // no hard links here (vfat, exFAT): a move that refuses an existing target
        Files.move(tmp, target);
      }
      syncDirectory(target.getParent());
      return true;
    } catch (FileAlreadyExistsException e) {
      return false;
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  private Path writeTemporary(Path target, byte[] data) throws IOException {
    Path tmp =
        target.resolveSibling(
            target.getFileName()
                + ".tmp"
                + Long.toHexString(ThreadLocalRandom.current().nextLong()));
    boolean done = false;
    try {
      try (FileChannel ch =
          FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
        ByteBuffer b = ByteBuffer.wrap(data);
        while (b.hasRemaining()) {
          ch.write(b);
        }
        ch.force(true);
      }
      adopt(tmp, FILE_MODE);
      done = true;
      return tmp;
    } finally {
      if (!done) {
        Files.deleteIfExists(tmp);
      }
    }
  }

  static void syncDirectory(Path dir) {
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException e) {
      // some filesystems cannot sync a directory; the rename itself is still atomic
    }
  }

  @Override
  public void close() throws IOException {
    if (lockFile != null) {
      lockFile.close(); // releases the lock
    }
  }
}
