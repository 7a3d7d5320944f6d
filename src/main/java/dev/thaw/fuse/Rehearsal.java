package dev.thaw.fuse;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import ru.serce.jnrfuse.struct.FileStat;
import ru.serce.jnrfuse.struct.FuseFileInfo;

/**
 * Drives a file system's callbacks as the kernel does for {@code cp} of each file, without a mount:
 * getattr and readdir of the root, then open, sequential 128 KiB reads of the first {@code
 * bytesPerFile}, and release of each file. Not thread-safe; one at a time.
 */
final class Rehearsal {
  private static final int REQUEST = 128 * 1024; // what libfuse 2 asks for at most
  private final ThawFuse fs;
  private final Runtime rt = Runtime.getSystemRuntime();

  Rehearsal(ThawFuse fs) {
    this.fs = fs;
  }

  /**
   * Lists the root, then reads the status file and every file the root lists through the callbacks;
   * returns the bytes read.
   */
  long run(long bytesPerFile) {
    fs.getattr("/", stat());
    List<String> files = new ArrayList<>(List.of("/.thaw/status"));
    fs.readdir(
        "/",
        null,
        (buf, name, st, off) -> {
          String n = StandardCharsets.UTF_8.decode(name).toString();
          int nul = n.indexOf('\0');
          n = nul >= 0 ? n.substring(0, nul) : n;
          if (!n.equals(".") && !n.equals("..") && !n.equals(".thaw")) {
            files.add("/" + n);
          }
          return 0;
        },
        0,
        info());
    long total = 0;
    Pointer buf = Memory.allocateDirect(rt, REQUEST);
    for (String f : files) {
      fs.getattr(f, stat());
      FuseFileInfo fi = info();
      if (fs.open(f, fi) != 0) {
        continue;
      }
      for (long off = 0; off < bytesPerFile; off += REQUEST) {
        int n = fs.read(f, buf, REQUEST, off, fi);
        if (n <= 0) {
          break;
        }
        total += n;
      }
      fs.release(f, fi);
    }
    return total;
  }

  private FileStat stat() {
    return FileStat.of(Memory.allocateDirect(rt, 256));
  }

  private FuseFileInfo info() {
    return FuseFileInfo.of(Memory.allocateDirect(rt, 128)); // flags 0: O_RDONLY
  }
}
