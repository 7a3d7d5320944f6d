package dev.thaw.cli;

import dev.thaw.io.UserDirs;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * The log file of a mount that runs in the background (its stdout and stderr once it has let go of
 * the terminal, {@link Detach}). By default it lives in the user's own state directory ({@link
 * UserDirs#state()}, mode 0700), never in a shared directory such as /tmp where another user could
 * plant a symbolic link at a predictable name; and it is created without following a link, so that
 * a link is refused rather than written through.
 */
final class MountLog {
  private MountLog() {}

  /** {@code STATE/mount-<mountpoint with / as ->.log}. */
  static Path defaultFor(Path mountpoint) throws IOException {
    Path dir = UserDirs.state();
    if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
      Files.createDirectories(dir.getParent());
      try {
        Files.createDirectory(
            dir,
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
      } catch (java.nio.file.FileAlreadyExistsException e) {
        // made meanwhile: checked below
      }
    }
    long uid = ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).longValue();
    long owner =
        ((Number) Files.getAttribute(dir, "unix:uid", LinkOption.NOFOLLOW_LINKS)).longValue();
    Set<PosixFilePermission> perms = Files.getPosixFilePermissions(dir, LinkOption.NOFOLLOW_LINKS);
    if (Files.isSymbolicLink(dir)
        || owner != uid
        || perms.contains(PosixFilePermission.GROUP_WRITE)
        || perms.contains(PosixFilePermission.OTHERS_WRITE)) {
      throw new IOException(
          "the log directory "
              + dir
              + " is not this user's own (it must be a"
              + " directory owned by uid "
              + uid
              + " that no one else can write); fix it, or name a log with --log");
    }
    return dir.resolve("mount" + mountpoint.toString().replace('/', '-') + ".log");
  }

  /** Creates (or empties) the log, refusing to follow a symbolic link at its name. */
  static void create(Path log) throws IOException {
    try {
      FileChannel.open(
              log,
              Set.of(
                  StandardOpenOption.CREATE,
                  StandardOpenOption.WRITE,
                  StandardOpenOption.TRUNCATE_EXISTING,
                  LinkOption.NOFOLLOW_LINKS),
              PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))
          .close();
    } catch (IOException e) {
      if (Files.isSymbolicLink(log)) {
        throw new IOException("refusing to write the mount log through the symbolic link " + log);
      }
      throw e;
    }
  }
}
