package dev.thaw.fuse;

import dev.thaw.image.ImageReader;
import java.io.PrintStream;
import java.time.Instant;
import java.util.Optional;
import java.util.function.Supplier;
import jnr.ffi.Pointer;
import jnr.ffi.Struct;
import jnr.ffi.types.off_t;
import jnr.ffi.types.size_t;
import ru.serce.jnrfuse.ErrorCodes;
import ru.serce.jnrfuse.FuseFillDir;
import ru.serce.jnrfuse.FuseStubFS;
import ru.serce.jnrfuse.struct.FileStat;
import ru.serce.jnrfuse.struct.FuseFileInfo;
import ru.serce.jnrfuse.struct.Statvfs;

/**
 * The FUSE boundary: maps paths to {@link MountTree} nodes, file handles to {@link OpenFiles}, and
 * failures to errno ({@link Errno}: every callback catches everything, because jffi turns an
 * escaping exception into a 0 return). No logic that a restore or another front end needs lives
 * here: reads and writes go to {@link ImageReader} and the image's live restore.
 */
final class ThawFuse extends FuseStubFS {
  private static final int O_ACCMODE = 3;

  /** fuse_file_info bits: bypass the page cache; keep the page cache across opens. */
  private static final int DIRECT_IO = 1;

  private static final int KEEP_CACHE = 1 << 1;

  /** The most one read answers (libfuse 2 asks for at most 128 KiB). */
  private static final int MAX_READ = 1 << 20;

  private final MountTree tree;
  private final Supplier<byte[]> status;
  private final Errno errno;
  private final long uid;
  private final long gid;
  private final boolean pageCache;
  private final Runnable onReady;
  private final OpenFiles files = new OpenFiles();

  /**
   * @param status the status document now ({@code .thaw/status})
   * @param pageCache read-only images go through the kernel's page cache rather than direct I/O
   *     (volume files always do)
   * @param onReady runs once the kernel has the file system (FUSE init)
   */
  ThawFuse(
      MountTree tree,
      Supplier<byte[]> status,
      PrintStream log,
      long uid,
      long gid,
      boolean pageCache,
      Runnable onReady) {
    this.tree = tree;
    this.status = status;
    this.errno = new Errno(log);
    this.uid = uid;
    this.gid = gid;
    this.pageCache = pageCache;
    this.onReady = onReady;
  }

  @Override
  public Pointer init(Pointer conn) {
    errno.call(
        "init",
        "/",
        () -> {
          onReady.run();
          return 0;
        });
    return null;
  }

  @Override
  public int getattr(String path, FileStat stat) {
    return errno.call(
        "getattr",
        path,
        () -> {
          Optional<MountTree.Node> n = tree.resolve(path);
          if (n.isEmpty()) {
            return -ErrorCodes.ENOENT();
          }
          stat.st_uid.set(uid);
          stat.st_gid.set(gid);
          MountTree.Node node = n.get();
          if (node instanceof MountTree.Dir d) {
            stat.st_mode.set(FileStat.S_IFDIR | 0555);
            stat.st_nlink.set(2);
            stat.st_mtim.tv_sec.set(d.mtime());
          } else if (node instanceof MountTree.ImageFile f) {
            file(stat, f.live() != null ? 0644 : 0444, f.size(), f.mtime());
          } else if (node instanceof MountTree.VolumeFile f) {
            file(stat, 0444, f.volume().size(), f.mtime());
          } else if (node instanceof MountTree.LockedFile f) {
            file(stat, 0444, f.size(), f.mtime());
          } else {
            file(stat, 0444, status.get().length, Instant.now().getEpochSecond());
          }
          return 0;
        });
  }

  private static void file(FileStat stat, int mode, long size, long mtime) {
    stat.st_mode.set(FileStat.S_IFREG | mode);
    stat.st_nlink.set(1);
    stat.st_size.set(size);
    stat.st_blksize.set(1 << 17);
    stat.st_blocks.set((size + 511) / 512);
    stat.st_mtim.tv_sec.set(mtime);
  }

  @Override
  public int readdir(
      String path, Pointer buf, FuseFillDir filter, @off_t long offset, FuseFileInfo fi) {
    return errno.call(
        "readdir",
        path,
        () -> {
          Optional<MountTree.Node> n = tree.resolve(path);
          if (n.isEmpty()) {
            return -ErrorCodes.ENOENT();
          }
          if (!(n.get() instanceof MountTree.Dir d)) {
            return -ErrorCodes.ENOTDIR();
          }
          filter.apply(buf, ".", null, 0);
          filter.apply(buf, "..", null, 0);
          for (String e : d.entries()) {
            filter.apply(buf, e, null, 0);
          }
          return 0;
        });
  }

  @Override
  public int open(String path, FuseFileInfo fi) {
    return errno.call(
        "open",
        path,
        () -> {
          boolean write = (fi.flags.get() & O_ACCMODE) != 0;
          Optional<MountTree.Node> n = tree.resolve(path);
          if (n.isEmpty()) {
            return -ErrorCodes.ENOENT();
          }
          MountTree.Node node = n.get();
          OpenFiles.OpenFile file;
          if (node instanceof MountTree.Dir) {
            return -ErrorCodes.EISDIR();
          } else if (node instanceof MountTree.LockedFile f) {
            errno.warn("cannot open " + path + ": " + f.reason());
            return -ErrorCodes.EACCES();
          } else if (node instanceof MountTree.StatusFile) {
            if (write) {
              return -ErrorCodes.EROFS();
            }
            file = new OpenFiles.StatusCopy(status.get());
            setFlag(fi, DIRECT_IO); // the content changes; read it to its end whatever getattr said
          } else if (node instanceof MountTree.VolumeFile v) {
            if (write) {
              return -ErrorCodes.EROFS();
            }
            file = new OpenFiles.VolumeOfImage(v.reader().open(), v.volume());
            // A partition or volume is there to be mounted (fuse2fs, a loop device, ntfs-3g): its
            // reader asks for a few KiB at a time, which the kernel's page cache and read-ahead
            // turn into 128 KiB requests (each 4 KiB read a round trip into thaw otherwise). Only
            // images that never change have volume files, so the kernel may keep their pages.
            setFlag(fi, KEEP_CACHE);
          } else {
            MountTree.ImageFile f = (MountTree.ImageFile) node;
            if (f.live() == null) {
              if (write) {
                return -ErrorCodes.EROFS();
              }
              file = new OpenFiles.ReadOnlyImage(f.reader().open());
              // A read-only image is read with direct I/O: thaw's cache and read-ahead serve every
              // read, and the kernel neither copies each byte into its page cache nor holds a
              // second
              // copy. Writable images (and --page-cache) keep the kernel's pages: they never change
              // behind its back, and shared mmap needs them.
              setFlag(fi, pageCache ? KEEP_CACHE : DIRECT_IO);
            } else {
              file = new OpenFiles.WritableImage(f.reader().open(), f.live(), write);
              setFlag(fi, KEEP_CACHE);
            }
          }
          fi.fh.set(files.add(file));
          return 0;
        });
  }

  /**
   * Sets a bit of fuse_file_info's bit-field word (direct_io = bit 0, keep_cache = bit 1). In
   * libfuse 2 that 32-bit word sits right before the 64-bit {@code fh}, which jnr-fuse maps.
   */
  private static void setFlag(FuseFileInfo fi, int bit) {
    Pointer mem = Struct.getMemory(fi);
    long off = fi.fh.offset() - 4;
    mem.putInt(off, mem.getInt(off) | bit);
  }

  @Override
  public int read(
      String path, Pointer buf, @size_t long size, @off_t long offset, FuseFileInfo fi) {
    return errno.call(
        "read",
        path + " at " + offset + "+" + size,
        () -> {
          OpenFiles.OpenFile f = files.get(fi.fh.get());
          if (f == null) {
            return -ErrorCodes.EBADF();
          }
          // straight from the chunk into FUSE's buffer: no per-read garbage
          return f.read(
              offset,
              (int) Math.min(size, MAX_READ),
              (at, data, from, n) -> {
                if (data == null) {
                  buf.setMemory(at, n, (byte) 0);
                } else {
                  buf.put(at, data, from, n);
                }
              });
        });
  }

  @Override
  public int write(
      String path, Pointer buf, @size_t long size, @off_t long offset, FuseFileInfo fi) {
    return errno.call(
        "write",
        path + " at " + offset + "+" + size,
        () -> {
          if (!(files.get(fi.fh.get()) instanceof OpenFiles.WritableImage w) || !w.writing()) {
            return -ErrorCodes.EBADF();
          }
          long imageSize = w.live().image().size();
          if (offset >= imageSize) {
            return -ErrorCodes.ENOSPC(); // an image has a fixed size
          }
          int n = (int) Math.min(size, imageSize - offset);
          byte[] data = new byte[n];
          buf.get(0, data, 0, n);
          w.live().write(offset, data, 0, n);
          return n;
        });
  }

  @Override
  public int fsync(String path, int isdatasync, FuseFileInfo fi) {
    return sync("fsync", path, fi);
  }

  @Override
  public int flush(String path, FuseFileInfo fi) {
    return sync("flush", path, fi);
  }

  /** fsync and close: the guest's writes reach the target's storage. */
  private int sync(String op, String path, FuseFileInfo fi) {
    return errno.call(
        op,
        path,
        () -> {
          if (files.get(fi.fh.get()) instanceof OpenFiles.WritableImage w && w.writing()) {
            w.live().flush();
          }
          return 0;
        });
  }

  @Override
  public int release(String path, FuseFileInfo fi) {
    return errno.call(
        "release",
        path,
        () -> {
          files.release(fi.fh.get());
          return 0;
        });
  }

  @Override
  public int truncate(String path, @off_t long size) {
    return errno.call(
        "truncate",
        path,
        () -> {
          Optional<MountTree.Node> n = tree.resolve(path);
          if (n.isEmpty()) {
            return -ErrorCodes.ENOENT();
          }
          if (!(n.get() instanceof MountTree.ImageFile f) || f.live() == null) {
            return -ErrorCodes.EROFS();
          }
          // an image keeps its size; O_TRUNC-less tools may "truncate" to the size it has
          return size == f.size() ? 0 : -ErrorCodes.EPERM();
        });
  }

  @Override
  public int statfs(String path, Statvfs stbuf) {
    return errno.call(
        "statfs",
        path,
        () -> {
          stbuf.f_bsize.set(4096);
          stbuf.f_frsize.set(4096);
          stbuf.f_namemax.set(255);
          return 0;
        });
  }
}
