package dev.thaw.restore;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Keeps two restores (or a restore and a live restore) from writing one target: each holds an
 * exclusive advisory lock ({@code fcntl}) on its target and its state file for as long as it runs.
 * The kernel drops such a lock with the process that held it, so a restore killed with SIGKILL
 * never leaves a stale lock behind. The second restore is refused with the pid of the first, read
 * from {@code /proc/locks}. Stateless.
 */
final class ExclusiveUse {
  private ExclusiveUse() {}

  /**
   * Locks all of {@code channel}'s file, or fails naming who holds it.
   *
   * @param what what the file is, for the message ("target", "restore state")
   * @throws IOException "... is in use by pid N ..." when another restore holds it
   */
  static FileLock lock(FileChannel channel, Path path, String what) throws IOException {
    FileLock lock;
    try {
      lock = channel.tryLock();
    } catch (OverlappingFileLockException e) {
      throw inUse(what, path, "this process (pid " + ProcessHandle.current().pid() + ")");
    }
    if (lock == null) {
      throw inUse(what, path, holder(path));
    }
    return lock;
  }

  private static IOException inUse(String what, Path path, String by) {
    return new IOException(
        what
            + " "
            + path
            + " is in use by "
            + by
            + ": another restore or live restore is writing it. Wait for it to end, or end it"
            + " (thaw unmount, or Ctrl-C), then run this command again.");
  }

  /** "pid N" of the process holding a lock on {@code path}, from /proc/locks, if it can tell. */
  static String holder(Path path) {
    try {
      long ino = ((Number) Files.getAttribute(path, "unix:ino")).longValue();
      long dev = ((Number) Files.getAttribute(path, "unix:dev")).longValue();
      String id = String.format("%02x:%02x:%d", major(dev), minor(dev), ino);
      List<String> lines = Files.readAllLines(Path.of("/proc/locks"));
      for (String line : lines) {
        // "1: POSIX  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" (after "->" for a blocked waiter)
        String[] f = line.trim().split("\\s+");
        if (f.length >= 6 && !f[1].equals("->") && f[5].equals(id)) {
          return "pid " + f[4];
        }
      }
    } catch (IOException | RuntimeException e) {
      // fall through: the lock is held all the same
    }
    return "another process";
  }

  /** The major number of a Linux {@code dev_t} (glibc's encoding). */
  static long major(long dev) {
    return ((dev >>> 8) & 0xfff) | ((dev >>> 32) & 0xfffff000L);
  }

  /** The minor number of a Linux {@code dev_t} (glibc's encoding). */
  static long minor(long dev) {
    return (dev & 0xff) | ((dev >>> 12) & 0xffffff00L);
  }
}
