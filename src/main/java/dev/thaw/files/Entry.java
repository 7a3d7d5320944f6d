package dev.thaw.files;

import java.time.Instant;

/**
 * One directory entry of a filesystem inside a backup.
 *
 * @param name the entry's name (no slashes)
 * @param kind what it is
 * @param mode the permission bits (e.g. {@code 0755}), or -1 when the filesystem has none
 * @param uid owner, or -1 when the filesystem has none
 * @param gid group, or -1 when the filesystem has none
 * @param size bytes (0 for directories)
 * @param modified the modification time, or null when the reader does not tell it
 */
public record Entry(
    String name, Kind kind, int mode, long uid, long gid, long size, Instant modified) {
  public enum Kind {
    FILE,
    DIRECTORY,
    SYMLINK,
    OTHER
  }
}
