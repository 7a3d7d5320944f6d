package dev.thaw.fuse;

import dev.thaw.image.ImageReader;
import dev.thaw.restore.LiveRestore;
import java.io.IOException;
import java.io.PrintStream;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
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
 * The FUSE boundary: maps paths to {@link MountTree} nodes, file handles to
 * {@link ImageReader.Handle}s (and, for writable images, their {@link LiveRestore}), and failures
 * to errno. Every callback catches everything and
 * answers -EIO, because jffi turns an escaping exception into a 0 return (a read would look like
 * end of file, a getattr like success). No logic that a restore also needs lives here.
 */
final class ThawFuse extends FuseStubFS {
  private static final int O_ACCMODE = 3;
  /** fuse_file_info bits: bypass the page cache; keep the page cache across opens. */
  private static final int DIRECT_IO = 1;
  private static final int KEEP_CACHE = 1 << 1;

  private final MountTree tree;
  private final PrintStream log;
  private final long uid;
  private final long gid;
  private final AtomicLong nextHandle = new AtomicLong(1);
  private final Map<Long, OpenImage> images = new ConcurrentHashMap<>();
  private final Map<Long, byte[]> statusHandles = new ConcurrentHashMap<>();

  private final Runnable onReady;
  private final boolean pageCache;

  /** An open image file: its reader handle, and its live restore or overlay when writable. */
  private record OpenImage(ImageReader.Handle handle, LiveRestore live, boolean writing) {}

  /**
   * @param pageCache read-only images go through the kernel's page cache rather than direct I/O
   */
  ThawFuse(MountTree tree, PrintStream log, long uid, long gid, boolean pageCache, Runnable onReady) {
    this.onReady = onReady;
    this.pageCache = pageCache;
    this.tree = tree;
    this.log = log;
    this.uid = uid;
    this.gid = gid;
  }

  private void warn(String msg) {
    log.println(Instant.now() + " thaw mount: " + msg);
    log.flush();
  }

  @Override
  public Pointer init(Pointer conn) {
    try {
      onReady.run();
    } catch (Throwable t) {
      warn("init: " + t);
    }
    return null;
  }

  @Override
  public int getattr(String path, FileStat stat) {
    try {
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
        stat.st_mode.set(FileStat.S_IFREG | (tree.live(f) != null ? 0644 : 0444));
        stat.st_nlink.set(1);
        stat.st_size.set(f.size());
        stat.st_blksize.set(1 << 17);
        stat.st_blocks.set((f.size() + 511) / 512);
        stat.st_mtim.tv_sec.set(f.mtime());
      } else {
        stat.st_mode.set(FileStat.S_IFREG | 0444);
        stat.st_nlink.set(1);
        stat.st_size.set(tree.status().length);
        stat.st_mtim.tv_sec.set(Instant.now().getEpochSecond());
      }
      return 0;
    } catch (Throwable t) {
      warn("getattr " + path + ": " + t);
      return -ErrorCodes.EIO();
    }
  }

  @Override
  public int readdir(String path, Pointer buf, FuseFillDir filter, @off_t long offset, FuseFileInfo fi) {
    try {
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
    } catch (Throwable t) {
      warn("readdir " + path + ": " + t);
      return -ErrorCodes.EIO();
    }
  }

  @Override
  public int open(String path, FuseFileInfo fi) {
    try {
      boolean write = (fi.flags.get() & O_ACCMODE) != 0;
      Optional<MountTree.Node> n = tree.resolve(path);
      if (n.isEmpty()) {
        return -ErrorCodes.ENOENT();
      }
      if (write && !(n.get() instanceof MountTree.ImageFile wf && tree.live(wf) != null)) {
        return -ErrorCodes.EROFS();
      }
      long h = nextHandle.getAndIncrement();
      MountTree.Node node = n.get();
      if (node instanceof MountTree.Dir) {
        return -ErrorCodes.EISDIR();
      } else if (node instanceof MountTree.ImageFile f) {
        ImageReader r;
        try {
          r = tree.reader(f);
        } catch (IOException e) {
          warn("cannot open " + path + ": " + e.getMessage());
          return -ErrorCodes.EIO();
        }
        LiveRestore live = tree.live(f);
        images.put(h, new OpenImage(r.open(), live, write));
        // A read-only image is read with direct I/O: thaw's cache and read-ahead serve every
        // read, and the kernel neither copies each byte into its page cache nor holds a second
        // copy. Writable images (and --page-cache) keep the kernel's pages: they never change
        // behind its back, and shared mmap needs them.
        setFlag(fi, live == null && !pageCache ? DIRECT_IO : KEEP_CACHE);
      } else {
        statusHandles.put(h, tree.status());
        setFlag(fi, DIRECT_IO); // the content changes; read it to its end whatever getattr said
      }
      fi.fh.set(h);
      return 0;
    } catch (Throwable t) {
      warn("open " + path + ": " + t);
      return -ErrorCodes.EIO();
    }
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
  public int read(String path, Pointer buf, @size_t long size, @off_t long offset, FuseFileInfo fi) {
    long h = fi.fh.get();
    try {
      OpenImage r = images.get(h);
      if (r != null) {
        // straight from the chunk into FUSE's buffer: no per-read garbage
        ImageReader.Sink sink = (at, data, from, n) -> {
          if (data == null) {
            buf.setMemory(at, n, (byte) 0);
          } else {
            buf.put(at, data, from, n);
          }
        };
        int len = (int) Math.min(size, 1 << 20);
        return r.live() != null ? r.live().read(r.handle(), offset, len, sink) : r.handle().read(offset, len, sink);
      }
      byte[] status = statusHandles.get(h);
      if (status != null) {
        if (offset >= status.length) {
          return 0;
        }
        int n = (int) Math.min(size, status.length - offset);
        buf.put(0, status, (int) offset, n);
        return n;
      }
      return -ErrorCodes.EBADF();
    } catch (IOException e) {
      warn("read " + path + " at " + offset + "+" + size + " failed: " + e.getMessage());
      return -ErrorCodes.EIO();
    } catch (Throwable t) {
      warn("read " + path + " at " + offset + ": " + t);
      return -ErrorCodes.EIO();
    }
  }

  @Override
  public int release(String path, FuseFileInfo fi) {
    try {
      long h = fi.fh.get();
      OpenImage r = images.remove(h);
      if (r != null) {
        r.handle().close();
      }
      statusHandles.remove(h);
      return 0;
    } catch (Throwable t) {
      warn("release " + path + ": " + t);
      return -ErrorCodes.EIO();
    }
  }

  @Override
  public int write(String path, Pointer buf, @size_t long size, @off_t long offset, FuseFileInfo fi) {
    try {
      OpenImage r = images.get(fi.fh.get());
      if (r == null || r.live() == null || !r.writing()) {
        return -ErrorCodes.EBADF();
      }
      if (offset >= r.live().image().size()) {
        return -ErrorCodes.ENOSPC(); // an image has a fixed size
      }
      int n = (int) Math.min(size, r.live().image().size() - offset);
      byte[] data = new byte[n];
      buf.get(0, data, 0, n);
      r.live().write(offset, data, 0, n);
      return n;
    } catch (IOException e) {
      warn("write " + path + " at " + offset + "+" + size + " failed: " + e.getMessage());
      return -errno(e);
    } catch (Throwable t) {
      warn("write " + path + " at " + offset + ": " + t);
      return -ErrorCodes.EIO();
    }
  }

  /**
   * The errno of a failed write or sync: a full or over-quota target is ENOSPC or EDQUOT (so
   * that a guest sees a full disk, not a broken one), anything else EIO.
   */
  static int errno(IOException e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      String m = String.valueOf(t.getMessage());
      if (m.contains("No space left on device")) {
        return ErrorCodes.ENOSPC();
      }
      if (m.contains("Disk quota exceeded")) {
        return ErrorCodes.EDQUOT();
      }
    }
    return ErrorCodes.EIO();
  }

  @Override
  public int fsync(String path, int isdatasync, FuseFileInfo fi) {
    return sync(path, fi);
  }

  @Override
  public int flush(String path, FuseFileInfo fi) {
    return sync(path, fi);
  }

  /** fsync and close: the guest's writes reach the target's storage. */
  private int sync(String path, FuseFileInfo fi) {
    try {
      OpenImage r = images.get(fi.fh.get());
      if (r != null && r.live() != null && r.writing()) {
        r.live().flush();
      }
      return 0;
    } catch (IOException e) {
      warn("fsync " + path + " failed: " + e.getMessage());
      return -errno(e);
    } catch (Throwable t) {
      warn("fsync " + path + ": " + t);
      return -ErrorCodes.EIO();
    }
  }

  @Override
  public int truncate(String path, @off_t long size) {
    try {
      Optional<MountTree.Node> n = tree.resolve(path);
      if (n.isEmpty()) {
        return -ErrorCodes.ENOENT();
      }
      if (!(n.get() instanceof MountTree.ImageFile f) || tree.live(f) == null) {
        return -ErrorCodes.EROFS();
      }
      // an image keeps its size; O_TRUNC-less tools may "truncate" to the size it has
      return size == f.size() ? 0 : -ErrorCodes.EPERM();
    } catch (Throwable t) {
      warn("truncate " + path + ": " + t);
      return -ErrorCodes.EIO();
    }
  }

  @Override
  public int statfs(String path, Statvfs stbuf) {
    try {
      stbuf.f_bsize.set(4096);
      stbuf.f_frsize.set(4096);
      stbuf.f_namemax.set(255);
      return 0;
    } catch (Throwable t) {
      return -ErrorCodes.EIO();
    }
  }
}
