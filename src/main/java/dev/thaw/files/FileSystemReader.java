package dev.thaw.files;

import dev.thaw.volume.ByteSource;
import dev.thaw.volume.Filesystems;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * Lists directories and copies files or trees out of a filesystem held in a volume file (a
 * partition or logical volume exposed as a file), as any user, without mounting it: ext2/3/4
 * through e2fsprogs' {@code debugfs}, which reads only the blocks it needs; NTFS and FAT through
 * {@code 7zz} (Debian's {@code 7zip}). XFS, Btrfs and exFAT are named with the root recipe
 * instead. Copies keep modes and times where the filesystem has them, ownership where the user
 * may set it, and symlinks as symlinks; they land in a private staging directory beside the
 * destination and are moved into place only when whole and contained.
 *
 * <p>Not thread-safe; one reader per command.
 */
public interface FileSystemReader {
  /** The filesystem's type ({@code ext4}, {@code ntfs}, {@code vfat}). */
  String type();

  /**
   * The entries of the directory at {@code path}, sorted by name; for a path that is not a
   * directory, that one entry.
   *
   * @throws FilesException when the path does not exist or escapes the root
   */
  List<Entry> list(String path) throws IOException;

  /**
   * Copies the file, symlink or directory tree at {@code path} to {@code destination}: into it
   * when it is an existing directory (as {@code destination/NAME}), else as it.
   *
   * @return the path created
   * @throws FilesException when the path does not exist, escapes the root, is not a regular
   *     file, directory or symlink, or the target exists
   */
  Path copy(String path, Path destination) throws IOException;

  /**
   * A reader for the filesystem in {@code volume}, chosen by its signature.
   *
   * @throws FilesException when no reader here can read it without root; the message names
   *     the recipe as root
   */
  static FileSystemReader open(Path volume) throws IOException {
    String fs;
    try (FileChannel ch = FileChannel.open(volume, StandardOpenOption.READ)) {
      fs = Filesystems.probe(ByteSource.of(ch));
    }
    return switch (fs) {
      case "ext2", "ext3", "ext4" -> new Debugfs(volume, fs);
      case "ntfs", "vfat" -> new SevenZip(volume, fs);
      case "" -> throw new FilesException(volume + " holds no filesystem thaw recognises (ext2/3/4, NTFS, FAT, "
          + "exFAT, XFS, Btrfs)");
      default -> throw new FilesException(volume + " holds " + fs + ", which thaw cannot read without root; as root: "
          + "mkdir -p /mnt/restore && " + (fs.equals("exfat") ? "mount.exfat-fuse -o ro" // Debian's kernel has exfat,
              : "mount -o ro,loop" + (fs.equals("xfs") ? ",norecovery" : "")) // not every container's
          + " " + volume + " /mnt/restore");
    };
  }
}
