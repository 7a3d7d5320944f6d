package dev.thaw.fuse;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.RetryPolicy;
import dev.thaw.image.ChunkCache;
import dev.thaw.image.ImageReader;
import dev.thaw.image.KeyPolicy;
import dev.thaw.image.Snapshot;
import dev.thaw.image.SnapshotImages;
import dev.thaw.restore.LiveRestore;
import dev.thaw.restore.LiveRestores;
import dev.thaw.store.SnapshotPath;
import dev.thaw.store.StoreException;
import dev.thaw.testing.Fixtures;
import dev.thaw.testing.MemoryStore;
import dev.thaw.volume.ImageVolumes;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import ru.serce.jnrfuse.ErrorCodes;
import ru.serce.jnrfuse.FuseFillDir;
import ru.serce.jnrfuse.struct.FileStat;
import ru.serce.jnrfuse.struct.FuseFileInfo;

/**
 * The FUSE callbacks driven directly, without a kernel mount: what each answers, and the errno of
 * each failure (jffi would turn an escaping exception into a 0, so none may escape).
 */
@Timeout(60)
class ThawFuseTest {
  private static final int MIB = Fixtures.MIB;
  private static final Runtime RT = Runtime.getSystemRuntime();
  private static final int O_RDONLY = 0;
  private static final int O_RDWR = 2;

  @TempDir Path dir;
  private final MemoryStore store = new MemoryStore();
  private final ByteArrayOutputStream logBytes = new ByteArrayOutputStream();
  private final PrintStream log = new PrintStream(logBytes, true, StandardCharsets.UTF_8);
  private FetchPipeline pipeline;
  private byte[] image;
  private SnapshotImages images;
  private LiveRestores lives;
  private ThawFuse fs;
  private byte[] statusDoc = "{\"store\":\"mem\"}\n".getBytes(StandardCharsets.UTF_8);

  @BeforeEach
  void setUp() throws Exception {
    image = Fixtures.image(4, 1234, 11);
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    pipeline =
        new FetchPipeline(
            store, 4, 2, new RetryPolicy(1, Duration.ofMillis(1), Duration.ofMillis(1)));
    images =
        SnapshotImages.open(
            Snapshot.open(store, snap, KeyPolicy.strict(null)),
            pipeline,
            new ChunkCache(64L * MIB),
            new ImageReader.Settings(0, 0, Duration.ofSeconds(10)));
  }

  @AfterEach
  void tearDown() throws Exception {
    if (lives != null) {
      lives.close();
    }
    pipeline.close();
  }

  private ThawFuse readOnly() {
    fs =
        new ThawFuse(
            new ImagesTree(images.readers(), Map.of(), 1000, 2000, new ImageVolumes(log::println)),
            () -> statusDoc,
            log,
            7,
            8,
            false,
            () -> {});
    return fs;
  }

  private ThawFuse writable() throws Exception {
    lives =
        LiveRestores.open(
            images, new LiveRestores.Targets(dir, Map.of(), new LiveRestore.Options(false, 4, 0)));
    fs =
        new ThawFuse(
            new ImagesTree(
                images.readers(), lives.all(), 1000, 2000, new ImageVolumes(log::println)),
            () -> statusDoc,
            log,
            7,
            8,
            false,
            () -> {});
    return fs;
  }

  private static FileStat stat() {
    return FileStat.of(Memory.allocateDirect(RT, 256));
  }

  private static FuseFileInfo info(int flags) {
    FuseFileInfo fi = FuseFileInfo.of(Memory.allocateDirect(RT, 128));
    fi.flags.set(flags);
    return fi;
  }

  /** Opens, reads {@code len} bytes at {@code off} and releases. */
  private byte[] read(String path, long off, int len) {
    return FuseCalls.read(fs, path, off, len);
  }

  @Test
  void getattrDescribesDirectoriesImagesAndTheStatusFile() {
    readOnly();
    FileStat root = stat();
    assertEquals(0, fs.getattr("/", root));
    assertEquals(FileStat.S_IFDIR | 0555, root.st_mode.intValue());
    assertEquals(7, root.st_uid.longValue());
    assertEquals(1000, root.st_mtim.tv_sec.get());
    FileStat img = stat();
    assertEquals(0, fs.getattr("/a.img", img));
    assertEquals(FileStat.S_IFREG | 0444, img.st_mode.intValue());
    assertEquals(image.length, img.st_size.longValue());
    FileStat st = stat();
    assertEquals(0, fs.getattr("/.thaw/status", st));
    assertEquals(statusDoc.length, st.st_size.longValue());
    assertEquals(-ErrorCodes.ENOENT(), fs.getattr("/nope.img", stat()));
    assertEquals(-ErrorCodes.ENOENT(), fs.getattr("/a.img/x", stat()));
    assertEquals(-ErrorCodes.ENOENT(), fs.getattr("/.thaw/other", stat()));
  }

  @Test
  void readdirListsTheImagesAndTheStatusDirectory() {
    readOnly();
    List<String> names = new ArrayList<>();
    FuseFillDir filler = FuseCalls.filler(names);
    assertEquals(0, fs.readdir("/", null, filler, 0, info(0)));
    assertEquals(List.of(".", "..", "a.img", ".thaw"), names);
    assertEquals(-ErrorCodes.ENOTDIR(), fs.readdir("/a.img", null, filler, 0, info(0)));
    assertEquals(-ErrorCodes.ENOENT(), fs.readdir("/x", null, filler, 0, info(0)));
  }

  @Test
  void readsServeTheImageAndTheStatusCopyTakenAtOpen() {
    readOnly();
    assertArrayEquals(
        Arrays.copyOfRange(image, 4 * MIB - 100, 4 * MIB + 100),
        read("/a.img", 4 * MIB - 100, 200));
    assertArrayEquals(
        Arrays.copyOfRange(image, image.length - 34, image.length),
        read("/a.img", image.length - 34, 4096),
        "short at the end");
    assertEquals(0, read("/a.img", image.length, 10).length, "nothing past the end");
    FuseFileInfo fi = info(O_RDONLY);
    assertEquals(0, fs.open("/.thaw/status", fi));
    byte[] opened = statusDoc;
    statusDoc = "changed".getBytes(StandardCharsets.UTF_8);
    Pointer buf = Memory.allocateDirect(RT, 4096);
    int n = fs.read("/.thaw/status", buf, 4096, 0, fi);
    byte[] got = new byte[n];
    buf.get(0, got, 0, n);
    assertArrayEquals(opened, got, "one consistent copy per open");
    assertEquals(0, fs.release("/.thaw/status", fi));
  }

  @Test
  void refusalsHaveTheirErrno() {
    readOnly();
    assertEquals(-ErrorCodes.EROFS(), fs.open("/a.img", info(O_RDWR)));
    assertEquals(-ErrorCodes.EROFS(), fs.open("/.thaw/status", info(O_RDWR)));
    assertEquals(-ErrorCodes.EISDIR(), fs.open("/", info(O_RDONLY)));
    assertEquals(-ErrorCodes.ENOENT(), fs.open("/b.img", info(O_RDONLY)));
    FuseFileInfo stale = info(O_RDONLY);
    stale.fh.set(12345);
    assertEquals(
        -ErrorCodes.EBADF(), fs.read("/a.img", Memory.allocateDirect(RT, 16), 16, 0, stale));
    assertEquals(-ErrorCodes.EROFS(), fs.truncate("/a.img", 0));
    FuseFileInfo fi = info(O_RDONLY);
    assertEquals(0, fs.open("/a.img", fi));
    assertEquals(
        -ErrorCodes.EBADF(),
        fs.write("/a.img", Memory.allocateDirect(RT, 16), 16, 0, fi),
        "a read-only image takes no write");
  }

  @Test
  void aFailureInsideACallbackIsAnErrnoAndALogLineNeverAZero() {
    readOnly();
    store.fault =
        (d, a) -> {
          throw new StoreException("store down for good", false);
        };
    FuseFileInfo fi = info(O_RDONLY);
    assertEquals(0, fs.open("/a.img", fi));
    assertEquals(
        -ErrorCodes.EIO(), fs.read("/a.img", Memory.allocateDirect(RT, 4096), 4096, 0, fi));
    String logged = logBytes.toString(StandardCharsets.UTF_8);
    assertTrue(
        logged.contains("read /a.img at 0+4096 failed") && logged.contains("store down for good"),
        logged);
    // an unchecked exception (a bug) is caught too: jffi would have answered 0
    ThawFuse broken =
        new ThawFuse(
            new ImagesTree(images.readers(), Map.of(), 1, 2, new ImageVolumes(log::println)),
            () -> {
              throw new IllegalStateException("bug");
            },
            log,
            0,
            0,
            false,
            () -> {});
    assertEquals(-ErrorCodes.EIO(), broken.getattr("/.thaw/status", stat()));
    assertEquals(-ErrorCodes.EIO(), broken.open("/.thaw/status", info(O_RDONLY)));
  }

  @Test
  void writableImagesTakeWritesThatReadBackAndSyncOnFsync() throws Exception {
    writable();
    FileStat st = stat();
    assertEquals(0, fs.getattr("/a.img", st));
    assertEquals(FileStat.S_IFREG | 0644, st.st_mode.intValue());
    FuseFileInfo fi = info(O_RDWR);
    assertEquals(0, fs.open("/a.img", fi));
    byte[] data = "across a chunk boundary".getBytes(StandardCharsets.UTF_8);
    Pointer buf = Memory.allocateDirect(RT, data.length);
    buf.put(0, data, 0, data.length);
    long off = 4L * MIB - 5;
    assertEquals(data.length, fs.write("/a.img", buf, data.length, off, fi));
    assertEquals(0, fs.fsync("/a.img", 0, fi));
    assertEquals(
        -ErrorCodes.ENOSPC(),
        fs.write("/a.img", buf, data.length, image.length, fi),
        "an image keeps its size");
    assertEquals(0, fs.truncate("/a.img", image.length), "truncating to its own size is allowed");
    assertEquals(-ErrorCodes.EPERM(), fs.truncate("/a.img", 10));
    assertEquals(0, fs.release("/a.img", fi));
    byte[] expected = image.clone();
    System.arraycopy(data, 0, expected, (int) off, data.length);
    assertArrayEquals(
        Arrays.copyOfRange(expected, (int) off - 10, (int) off + 40), read("/a.img", off - 10, 50));
    FuseFileInfo ro = info(O_RDONLY);
    assertEquals(0, fs.open("/a.img", ro));
    assertEquals(
        -ErrorCodes.EBADF(),
        fs.write("/a.img", buf, data.length, 0, ro),
        "opened for reading only");
    assertEquals(0, fs.release("/a.img", ro));
    lives.close();
    lives = null;
    byte[] target = Files.readAllBytes(dir.resolve("a.img"));
    assertArrayEquals(
        Arrays.copyOfRange(expected, 4 * MIB - 5, 4 * MIB + 18),
        Arrays.copyOfRange(target, 4 * MIB - 5, 4 * MIB + 18),
        "the write is in the target");
  }

  @Test
  void aFullTargetIsEnospcNotEio() {
    assertEquals(ErrorCodes.ENOSPC(), Errno.of(new java.io.IOException("No space left on device")));
    assertEquals(
        ErrorCodes.ENOSPC(),
        Errno.of(
            new java.io.IOException(
                "cannot write chunk 3", new java.io.IOException("No space left on device"))));
    assertEquals(ErrorCodes.EDQUOT(), Errno.of(new java.io.IOException("Disk quota exceeded")));
    assertEquals(ErrorCodes.EIO(), Errno.of(new RuntimeException("anything else")));
  }
}
