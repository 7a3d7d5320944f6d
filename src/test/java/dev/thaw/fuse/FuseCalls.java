package dev.thaw.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import ru.serce.jnrfuse.FuseFillDir;
import ru.serce.jnrfuse.struct.FileStat;
import ru.serce.jnrfuse.struct.FuseFileInfo;

/** FUSE callbacks as the kernel would make them, for tests that drive {@link ThawFuse} directly. */
final class FuseCalls {
  private static final Runtime RT = Runtime.getSystemRuntime();

  private FuseCalls() {}

  static FileStat stat() {
    return FileStat.of(Memory.allocateDirect(RT, 256));
  }

  static FuseFileInfo info(int flags) {
    FuseFileInfo fi = FuseFileInfo.of(Memory.allocateDirect(RT, 128));
    fi.flags.set(flags);
    return fi;
  }

  /** Opens read-only, reads {@code len} bytes at {@code off} and releases. */
  static byte[] read(ThawFuse fs, String path, long off, int len) {
    FuseFileInfo fi = info(0);
    assertEquals(0, fs.open(path, fi));
    Pointer buf = Memory.allocateDirect(RT, len);
    int n = fs.read(path, buf, len, off, fi);
    assertTrue(n >= 0, "read answered " + n);
    byte[] out = new byte[n];
    buf.get(0, out, 0, n);
    assertEquals(0, fs.release(path, fi));
    return out;
  }

  /** The names readdir gives for {@code path}, "." and ".." included; the readdir must succeed. */
  static List<String> list(ThawFuse fs, String path) {
    List<String> names = new ArrayList<>();
    assertEquals(0, fs.readdir(path, null, filler(names), 0, info(0)));
    return names;
  }

  /** A filler that collects the names it is given. */
  static FuseFillDir filler(List<String> names) {
    return (Pointer buf, ByteBuffer name, Pointer stbuf, long off) -> {
      byte[] b = new byte[name.remaining()];
      name.get(b);
      int end = 0;
      while (end < b.length && b[end] != 0) {
        end++;
      }
      names.add(new String(b, 0, end, StandardCharsets.UTF_8));
      return 0;
    };
  }
}
