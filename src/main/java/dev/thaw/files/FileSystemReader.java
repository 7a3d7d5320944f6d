package dev.thaw.files;

import dev.thaw.volume.ByteSource;
import dev.thaw.volume.Filesystems;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * Lists directories and copies files or trees out of a filesystem inside a backup, as any user,
 * without mounting it. ext2/3/4, FAT12/16/32 and exFAT are read in-process from the volume's bytes
 * ({@link #open(String, ByteSource, int)}: through the image reader, fetching only the chunks that
 * hold the metadata on the path and the file's data); NTFS through {@code 7zz} (Debian's {@code
 * 7zip}), which needs the volume as a file ({@link #open(Path)}: a partition file of a mount, or a
 * filesystem image). XFS and Btrfs are named with the root recipe instead. Copies keep modes and
 * times where the filesystem has them, ownership when run as root, and symlinks as symlinks; they
 * land in a private staging directory beside the destination and are moved into place only when
 * whole and contained.
 *
 * <p>Not thread-safe; one reader per command, closed after use.
 */
public interface FileSystemReader extends AutoCloseable {
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
   * Copies the file, symlink or directory tree at {@code path} to {@code destination}: into it when
   * it is an existing directory (as {@code destination/NAME}), else as it.
   *
   * @return the path created
   * @throws FilesException when the path does not exist, escapes the root, is not a regular file,
   *     directory or symlink, or the target exists
   */
  Path copy(String path, Path destination) throws IOException;

  @Override
  default void close() throws IOException {}

  /** Pieces of file data a copy reads at once (the fetch pipeline's default parallelism). */
  int PARALLEL = 16;

  /**
   * A reader for the filesystem in a volume file, chosen by its signature: in-process for ext2/3/4,
   * FAT and exFAT (debugfs for ext4 features the in-process reader does not know), 7zz for NTFS.
   *
   * @throws FilesException when no reader here can read it without root; the message names the
   *     recipe as root
   */
  static FileSystemReader open(Path volume) throws IOException {
    FileChannel ch = FileChannel.open(volume, StandardOpenOption.READ);
    try {
      ByteSource src = ByteSource.of(ch);
      String fs = Filesystems.probe(src);
      String name =
          volume.getFileName() == null ? volume.toString() : volume.getFileName().toString();
      if (fs.equals("ntfs")) {
        ch.close();
        return new SevenZip(volume, fs);
      }
      try {
        return new TreeReader(tree(name, src, fs, volume), src, name, PARALLEL, System.err, ch);
      } catch (Ext4.Unsupported e) {
        ch.close();
        return new Debugfs(volume, fs);
      }
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
  }

  /**
   * A reader for the filesystem in {@code volume}, read in-process (ext2/3/4, FAT, exFAT).
   *
   * @param name the volume's name ({@code drive-scsi0.img.p1}), for messages
   * @param parallel pieces of file data read at once
   * @throws FilesException when the volume holds a filesystem that needs a volume file (NTFS:
   *     {@link #needsFile}) or root; the message says what to do
   */
  static FileSystemReader open(String name, ByteSource volume, int parallel) throws IOException {
    return new TreeReader(
        tree(name, volume, Filesystems.probe(volume), null),
        volume,
        name,
        parallel,
        System.err,
        null);
  }

  /**
   * A reader that runs a tool on {@code volume} without reading it in this process (the file may be
   * served by this process's own FUSE mount, which it must never read itself).
   *
   * @param filesystem what the volume holds, as probed; one that {@link #needsFile}
   */
  static FileSystemReader withTool(Path volume, String filesystem) throws FilesException {
    if (!needsFile(filesystem)) {
      throw new FilesException("no tool here reads " + filesystem + " from " + volume);
    }
    return new SevenZip(volume, filesystem);
  }

  /** Whether {@code filesystem} is read by a tool that needs the volume as a file. */
  static boolean needsFile(String filesystem) {
    return filesystem.equals("ntfs");
  }

  /**
   * @param file the volume file, or null for a volume of an image in a store
   */
  private static FileTree tree(String name, ByteSource src, String fs, Path file)
      throws IOException {
    String recipe =
        file != null
            ? "mkdir -p /mnt/restore && "
            : "thaw mount the snapshot, then mkdir -p /mnt/restore && ";
    String target = file != null ? file.toString() : "MOUNT/" + name;
    return switch (fs) {
      case "ext2", "ext3", "ext4" -> Ext4.open(src, fs, name);
      case "vfat" -> Fat.open(src, name);
      case "exfat" -> ExFat.open(src, name);
      case "ntfs" ->
          throw new FilesException(
              name
                  + " holds ntfs, which thaw reads with 7zz from a volume file: "
                  + "mount the snapshot (thaw mount, as a user who may use FUSE) and run thaw files ls MOUNT/"
                  + name);
      case "" ->
          throw new FilesException(
              name
                  + " holds no filesystem thaw recognises (ext2/3/4, NTFS, FAT, "
                  + "exFAT, XFS, Btrfs)");
      default ->
          throw new FilesException(
              name
                  + " holds "
                  + fs
                  + ", which thaw cannot read without root; as root: "
                  + recipe
                  + "mount -o ro,loop"
                  + (fs.equals("xfs") ? ",norecovery" : "")
                  + " "
                  + target
                  + " /mnt/restore");
    };
  }
}
