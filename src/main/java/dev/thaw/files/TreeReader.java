package dev.thaw.files;

import dev.thaw.volume.ByteSource;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.FileTime;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;

/**
 * Lists and copies out of a filesystem read in-process ({@link FileTree}): no external tool, no
 * mount, no root. Paths resolve as in a chroot: symlinks in the middle of a path are followed
 * within the filesystem (at most 40), the last component is taken as it is. A copy creates
 * directories and symlinks as it walks and reads files' data in pieces of at most 1 MiB on a pool
 * of threads, several pieces in flight at once, so that the chunks a file spans are fetched in
 * parallel; holes are left unwritten. Modes and times are set once the data is written (directories
 * last, deepest first), ownership only when running as root. Entries that are not files,
 * directories or symlinks inside a copied tree are skipped with a note; one named directly is
 * refused.
 *
 * <p>Not thread-safe; one reader per command. {@link #close} stops the pool.
 */
final class TreeReader implements FileSystemReader {
  static final int PIECE = 1 << 20;
  private static final int MAX_LINKS = 40;
  private static final int MAX_DEPTH = 4096;

  private final FileTree tree;
  private final ByteSource dev;
  private final String volume;
  private final PrintStream notes;
  private final ExecutorService pool;
  private final Semaphore inFlight;
  private final boolean root = Copier.isRoot();
  private final java.io.Closeable onClose;

  /**
   * @param volume the volume's name, for messages and the name of a copied root directory
   * @param parallel pieces read at once
   * @param notes where skipped entries are named
   * @param onClose closed with the reader (the volume file's channel), or null
   */
  TreeReader(
      FileTree tree,
      ByteSource dev,
      String volume,
      int parallel,
      PrintStream notes,
      java.io.Closeable onClose) {
    this.onClose = onClose;
    this.tree = tree;
    this.dev = dev;
    this.volume = volume;
    this.notes = notes;
    this.pool =
        Executors.newFixedThreadPool(
            parallel,
            r -> {
              Thread t = new Thread(r, "thaw-files");
              t.setDaemon(true);
              return t;
            });
    this.inFlight = new Semaphore(2 * parallel);
  }

  @Override
  public String type() {
    return tree.type();
  }

  @Override
  public void close() throws IOException {
    pool.shutdownNow();
    if (onClose != null) {
      onClose.close();
    }
  }

  // ---- paths

  private record Found(FileTree.Node node, String path) {}

  /**
   * The node at {@code p}; symlinks before the last component are followed within the filesystem.
   */
  private Found resolve(FsPath p) throws IOException {
    Deque<String> todo = new ArrayDeque<>(p.parts());
    List<FileTree.Node> dirs = new ArrayList<>(List.of(tree.root()));
    List<String> names = new ArrayList<>();
    int links = 0;
    while (!todo.isEmpty()) {
      String name = todo.pollFirst();
      if (name.equals(".")) {
        continue;
      }
      if (name.equals("..")) {
        if (!names.isEmpty()) {
          names.remove(names.size() - 1);
          dirs.remove(dirs.size() - 1);
        }
        continue;
      }
      FileTree.Node dir = dirs.get(dirs.size() - 1);
      String here = "/" + String.join("/", names);
      if (dir.kind() != Entry.Kind.DIRECTORY) {
        throw new FilesException("not a directory in " + volume + ": " + here);
      }
      FileTree.Node n = lookup(dir, name, here);
      if (n.kind() == Entry.Kind.SYMLINK && !todo.isEmpty()) {
        if (++links > MAX_LINKS) {
          throw new FilesException(
              "too many levels of symlinks in " + volume + ": " + p.absolute());
        }
        String target = tree.readLink(n);
        List<String> parts = List.of(target.split("/"));
        for (int i = parts.size() - 1; i >= 0; i--) {
          if (!parts.get(i).isEmpty()) {
            todo.addFirst(parts.get(i));
          }
        }
        if (target.startsWith("/")) {
          names.clear();
          dirs.subList(1, dirs.size()).clear();
        }
        continue;
      }
      names.add(name);
      dirs.add(n);
    }
    return new Found(dirs.get(dirs.size() - 1), "/" + String.join("/", names));
  }

  /**
   * The entry {@code name} of {@code dir}: the one of that name, else one the filesystem takes for
   * it (case).
   */
  private FileTree.Node lookup(FileTree.Node dir, String name, String dirPath) throws IOException {
    FileTree.Named alike = null;
    for (FileTree.Named e : tree.list(dir)) {
      if (e.name().equals(name)) {
        return tree.node(e);
      }
      if (alike == null && tree.sameName(e.name(), name)) {
        alike = e;
      }
    }
    if (alike != null) {
      return tree.node(alike);
    }
    throw new FilesException(
        "no such file or directory in "
            + volume
            + ": "
            + (dirPath.equals("/") ? "" : dirPath)
            + "/"
            + name);
  }

  @Override
  public List<Entry> list(String path) throws IOException {
    FsPath p = FsPath.parse(path);
    Found f = resolve(p);
    if (f.node().kind() != Entry.Kind.DIRECTORY) {
      return List.of(f.node().entry(p.name()));
    }
    List<Entry> out = new ArrayList<>();
    for (FileTree.Named e : tree.list(f.node())) {
      out.add(tree.node(e).entry(e.name()));
    }
    out.sort(Comparator.comparing(Entry::name));
    return out;
  }

  // ---- copies

  @Override
  public Path copy(String path, Path destination) throws IOException {
    FsPath p = FsPath.parse(path);
    Found f = resolve(p);
    FileTree.Node n = f.node();
    if (n.kind() == Entry.Kind.OTHER) {
      throw new FilesException("not a regular file, directory or symlink: " + p.absolute());
    }
    String name = p.root() ? volume + ".root" : p.name();
    Path target = Copier.target(destination, name);
    Copy c = new Copy();
    Path made =
        Copier.copy(
            target,
            staging -> {
              Path out = staging.resolve(name);
              c.write(n, out, f.path(), new HashSet<>(), 0);
              c.finish();
              return out;
            });
    // the top's attributes after the move: a directory without write permission cannot be
    // moved to another parent, and the move changes its times
    attributes(made, n);
    return made;
  }

  /** One copy: pieces in flight, and the attributes to set once they are written. */
  private final class Copy {
    private final List<Future<?>> pieces = new ArrayList<>();
    private final List<Path> paths = new ArrayList<>();
    private final List<FileTree.Node> nodes = new ArrayList<>();

    void write(FileTree.Node n, Path out, String path, Set<Long> ancestors, int depth)
        throws IOException {
      switch (n.kind()) {
        case FILE -> file(n, out, path);
        case SYMLINK -> {
          String target = tree.readLink(n);
          try {
            Files.createSymbolicLink(out, Path.of(target));
          } catch (InvalidPathException e) {
            throw new FilesException(
                "symlink " + path + " in " + volume + " has a target no file can hold");
          }
        }
        case DIRECTORY -> {
          if (depth > MAX_DEPTH || !ancestors.add(n.id())) {
            throw new FilesException(
                volume + ": damaged filesystem: the directory " + path + " contains itself");
          }
          Files.createDirectory(out);
          for (FileTree.Named e : tree.list(n)) {
            String name = e.name();
            String child = (path.equals("/") ? "" : path) + "/" + name;
            Path to =
                name.isEmpty()
                        || name.equals(".")
                        || name.equals("..")
                        || name.indexOf('/') >= 0
                        || name.indexOf('\0') >= 0
                    ? null
                    : resolve(out, name);
            if (to == null) {
              notes.println(
                  "thaw: skipped an entry of "
                      + path
                      + " whose name no file can have: "
                      + name.replace("\0", "\\0"));
              continue;
            }
            FileTree.Node cn = tree.node(e);
            if (cn.kind() == Entry.Kind.OTHER) {
              notes.println(
                  "thaw: skipped " + child + ": not a regular file, directory or symlink");
              continue;
            }
            write(cn, to, child, ancestors, depth + 1);
          }
          ancestors.remove(n.id());
        }
        default -> throw new FilesException("not a regular file, directory or symlink: " + path);
      }
      if (depth > 0) {
        paths.add(out);
        nodes.add(n);
      }
    }

    /** {@code dir/name}, or null when no path can hold the name (a lone UTF-16 surrogate). */
    private Path resolve(Path dir, String name) {
      try {
        return dir.resolve(name);
      } catch (InvalidPathException e) {
        return null;
      }
    }

    private void file(FileTree.Node n, Path out, String path) throws IOException {
      List<FileTree.Run> runs = tree.data(n);
      Files.createFile(out);
      try (RandomAccessFile f = new RandomAccessFile(out.toFile(), "rw")) {
        f.setLength(n.size()); // holes stay holes
        for (FileTree.Run r : runs) {
          if (r.literal() != null) {
            f.seek(r.fileOffset());
            f.write(r.literal(), 0, (int) r.length());
          }
        }
      }
      for (FileTree.Run r : runs) {
        if (r.literal() != null) {
          continue;
        }
        for (long done = 0; done < r.length(); ) {
          // pieces end at PIECE boundaries of the volume, so that a piece spans few chunks
          long vol = r.volumeOffset() + done;
          int len = (int) Math.min(r.length() - done, PIECE - vol % PIECE);
          long at = r.fileOffset() + done;
          submit(out, path, vol, at, len);
          done += len;
        }
      }
    }

    private void submit(Path out, String path, long vol, long at, int len) throws IOException {
      try {
        inFlight.acquire();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("copy interrupted");
      }
      try {
        pieces.add(
            pool.submit(
                () -> {
                  try {
                    byte[] b = new byte[len];
                    dev.read(vol, b, 0, len);
                    try (FileChannel ch = FileChannel.open(out, StandardOpenOption.WRITE)) {
                      ByteBuffer buf = ByteBuffer.wrap(b);
                      while (buf.hasRemaining()) {
                        ch.write(buf, at + buf.position());
                      }
                    }
                    return null;
                  } catch (IOException e) {
                    throw new IOException(
                        "cannot copy " + path + " out of " + volume + ": " + e.getMessage(), e);
                  } finally {
                    inFlight.release();
                  }
                }));
      } catch (RuntimeException e) {
        inFlight.release();
        throw e;
      }
    }

    /** Waits for every piece; then sets attributes, directories last and deepest first. */
    void finish() throws IOException {
      try {
        for (Future<?> f : pieces) {
          f.get();
        }
      } catch (InterruptedException e) {
        pieces.forEach(f -> f.cancel(true));
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("copy interrupted");
      } catch (ExecutionException e) {
        pieces.forEach(f -> f.cancel(true));
        Throwable c = e.getCause();
        throw c instanceof IOException io ? io : new IOException(c);
      }
      for (int i = 0; i < paths.size(); i++) {
        attributes(paths.get(i), nodes.get(i)); // children before their directory: walk order
      }
    }
  }

  /** Ownership (as root), mode and times of {@code p} as {@code n} has them. */
  private void attributes(Path p, FileTree.Node n) throws IOException {
    boolean link = n.kind() == Entry.Kind.SYMLINK;
    LinkOption[] opts = link ? new LinkOption[] {LinkOption.NOFOLLOW_LINKS} : new LinkOption[0];
    if (root && n.uid() >= 0) {
      Files.setAttribute(p, "unix:uid", (int) n.uid(), opts);
      Files.setAttribute(p, "unix:gid", (int) n.gid(), opts);
    }
    if (!link && n.mode() >= 0) {
      Files.setAttribute(p, "unix:mode", n.mode()); // after chown, which clears set-id bits
    }
    if (n.mtime() != null) {
      try {
        Files.getFileAttributeView(p, BasicFileAttributeView.class, opts)
            .setTimes(
                FileTime.from(n.mtime()),
                n.atime() == null ? null : FileTime.from(n.atime()),
                null);
      } catch (IOException | UnsupportedOperationException e) {
        if (!link) {
          throw e;
        } // a symlink's times cannot be set everywhere
      }
    }
  }
}
