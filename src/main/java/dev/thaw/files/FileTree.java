package dev.thaw.files;

import java.io.IOException;
import java.time.Instant;
import java.util.List;

/**
 * A filesystem read in-process from its volume's bytes: nodes, directory listings, symlink targets
 * and where a file's bytes lie. Implementations check every structure they read (bounds, counts,
 * magic numbers) and fail with a {@link FilesException} naming what is damaged, never with a loop
 * or an allocation the volume's size does not justify. Thread-safe: a copy reads several files'
 * data at once.
 */
interface FileTree {
  /**
   * The most entries listed of one directory: a hostile image's huge directory ends in an error
   * instead of exhausting the heap, and no real directory comes near.
   */
  int MAX_ENTRIES = 1 << 18;

  /** The filesystem's type ({@code ext4}, {@code vfat}, {@code exfat}). */
  String type();

  /** The root directory. */
  Node root() throws IOException;

  /**
   * The entries of directory {@code dir}, without {@code .} and {@code ..}, in on-disk order. Their
   * nodes may be read only when asked for ({@link #node}): a path lookup in a large directory reads
   * one inode, not all.
   */
  List<Named> list(Node dir) throws IOException;

  /**
   * Whether the entry {@code listed} answers to {@code asked} when no entry has that name exactly:
   * never where names are case-sensitive; equal names after up-casing where the filesystem compares
   * names so (exFAT).
   */
  default boolean sameName(String listed, String asked) {
    return false;
  }

  /** The node of a directory entry. */
  Node node(Named entry) throws IOException;

  /** The target of symlink {@code link}. */
  String readLink(Node link) throws IOException;

  /**
   * Where the bytes of regular file {@code file} lie: runs in file order, not overlapping, within
   * the file's size; what no run covers reads as zeros (a hole).
   */
  List<Run> data(Node file) throws IOException;

  /**
   * A file, directory, symlink or other node.
   *
   * @param id what tells directories apart (an inode number, a first cluster), to refuse cycles
   * @param mode the permission bits, or -1 when the filesystem has none
   * @param uid owner, or -1 when the filesystem has none
   * @param gid group, or -1 when the filesystem has none
   * @param mtime the modification time, or null
   * @param atime the access time, or null
   * @param ref the implementation's own reference to the node (an inode's bytes, a cluster)
   */
  record Node(
      long id,
      Entry.Kind kind,
      int mode,
      long uid,
      long gid,
      long size,
      Instant mtime,
      Instant atime,
      Object ref) {
    Entry entry(String name) {
      return new Entry(name, kind, mode, uid, gid, kind == Entry.Kind.DIRECTORY ? 0 : size, mtime);
    }
  }

  /**
   * A directory entry: a name, and its node or what finds it.
   *
   * @param number the implementation's number of the node (an inode number) when {@code node} is
   *     null
   * @param node the node when the directory itself holds it (FAT), else null
   */
  record Named(String name, long number, Node node) {}

  /**
   * {@code length} bytes of a file from {@code fileOffset}: at {@code volumeOffset} of the volume,
   * or the bytes of {@code literal} when it is not null (data kept inside an inode).
   */
  record Run(long fileOffset, long volumeOffset, long length, byte[] literal) {}
}
