package dev.thaw.fuse;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
import dev.thaw.restore.ServeStatus;
import dev.thaw.store.SnapshotPath;
import dev.thaw.testing.Fixtures;
import dev.thaw.testing.MemoryStore;
import dev.thaw.volume.Extent;
import dev.thaw.volume.ImageVolumes;
import dev.thaw.volume.Volume;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import ru.serce.jnrfuse.ErrorCodes;
import ru.serce.jnrfuse.struct.FileStat;
import ru.serce.jnrfuse.struct.FuseFileInfo;

/**
 * Partitions as files beside their image, through the FUSE callbacks driven directly: listed, sized
 * and read as offset reads of the image; none for a hostile table (a warning in the log, the image
 * still served) or a writable image; their table in the status document.
 */
@Timeout(60)
class ThawFuseVolumesTest {
  private static final int MIB = Fixtures.MIB;

  @TempDir Path dir;
  private final MemoryStore store = new MemoryStore();
  private final ByteArrayOutputStream logBytes = new ByteArrayOutputStream();
  private final PrintStream log = new PrintStream(logBytes, true, StandardCharsets.UTF_8);
  private final ChunkCache cache = new ChunkCache(64L * MIB);
  private FetchPipeline pipeline;
  private LiveRestores lives;
  private byte[] image;
  private SnapshotImages images;
  private ImageVolumes volumes;
  private ThawFuse fs;

  @AfterEach
  void tearDown() throws Exception {
    if (lives != null) {
      lives.close();
    }
    if (pipeline != null) {
      pipeline.close();
    }
  }

  /**
   * Random, text and zero 4 MiB chunks under an MBR: p1 at 1 MiB (4 MiB), p2 at p2Start MiB (4 MiB,
   * across a chunk boundary).
   */
  private void open(int p2StartMib) throws Exception {
    open(p2StartMib, 0);
  }

  private void open(int p2StartMib, int readAhead) throws Exception {
    image = Fixtures.image(readAhead == 0 ? 3 : 12, 0, 5);
    Arrays.fill(image, 0, 512, (byte) 0);
    slot(0, 0x83, 2048, 8192);
    slot(1, 0x07, p2StartMib * 2048L, 8192);
    image[510] = 0x55;
    image[511] = (byte) 0xaa;
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    pipeline =
        new FetchPipeline(
            store, 4, 2, new RetryPolicy(1, Duration.ofMillis(1), Duration.ofMillis(1)));
    images =
        SnapshotImages.open(
            Snapshot.open(store, snap, KeyPolicy.strict(null)),
            pipeline,
            cache,
            new ImageReader.Settings(readAhead, 0, Duration.ofSeconds(10)));
    volumes = new ImageVolumes(w -> log.println("warning: " + w));
  }

  private void slot(int i, int type, long start, long sectors) {
    int at = 446 + 16 * i;
    image[at + 4] = (byte) type;
    for (int b = 0; b < 4; b++) {
      image[at + 8 + b] = (byte) (start >>> (8 * b));
      image[at + 12 + b] = (byte) (sectors >>> (8 * b));
    }
  }

  private ThawFuse mount(Map<String, LiveRestore> writable) {
    fs =
        new ThawFuse(
            new ImagesTree(images.readers(), writable, 1000, 2000, volumes),
            () ->
                ServeStatus.of(
                        "mem", null, cache, pipeline.stats(), images.readers(), writable, volumes)
                    .toJson(),
            log,
            7,
            8,
            false,
            () -> {});
    return fs;
  }

  private List<String> list(String path) {
    return FuseCalls.list(fs, path);
  }

  private static FuseFileInfo info(int flags) {
    return FuseCalls.info(flags);
  }

  private byte[] read(String path, long off, int len) {
    return FuseCalls.read(fs, path, off, len);
  }

  @Test
  void partitionsAreReadOnlyFilesBesideTheImageReadAsOffsetReads() throws Exception {
    open(6);
    mount(Map.of());
    assertEquals(List.of(".", "..", "a.img", "a.img.p1", "a.img.p2", ".thaw"), list("/"));
    FileStat st = FuseCalls.stat();
    assertEquals(0, fs.getattr("/a.img.p2", st));
    assertEquals(FileStat.S_IFREG | 0444, st.st_mode.intValue());
    assertEquals(4L * MIB, st.st_size.longValue());
    // p2 is image bytes [6, 10) MiB: a read across the chunk boundary at 8 MiB
    assertArrayEquals(
        Arrays.copyOfRange(image, 8 * MIB - 100, 8 * MIB + 100),
        read("/a.img.p2", 2 * MIB - 100, 200));
    assertArrayEquals(
        Arrays.copyOfRange(image, 10 * MIB - 30, 10 * MIB),
        read("/a.img.p2", 4 * MIB - 30, 4096),
        "short at the volume's end, not the image's");
    assertEquals(0, read("/a.img.p2", 4L * MIB, 10).length);
    assertArrayEquals(Arrays.copyOfRange(image, MIB, MIB + 512), read("/a.img.p1", 0, 512));
    assertEquals(-ErrorCodes.EROFS(), fs.open("/a.img.p1", info(2)));
    assertEquals(-ErrorCodes.ENOENT(), fs.getattr("/a.img.p3", FuseCalls.stat()));
    String status = new String(read("/.thaw/status", 0, 1 << 16), StandardCharsets.UTF_8);
    assertTrue(
        status.contains("\"table\" : \"mbr\"")
            && status.contains("\"name\" : \"a.img.p2\"")
            && status.contains("\"type_id\" : \"0x07\""),
        status);
    assertFalse(
        logBytes.toString(StandardCharsets.UTF_8).contains("warning"),
        logBytes.toString(StandardCharsets.UTF_8));
  }

  @Test
  void theScanReadsTheTablesWithoutReadAhead() throws Exception {
    open(6, 4); // a mount's reader reads ahead; the scan's few reads must not start it
    mount(Map.of());
    assertEquals(List.of(".", "..", "a.img", "a.img.p1", "a.img.p2", ".thaw"), list("/"));
    ImageReader.Stats st = images.readers().get("a.img").stats();
    assertEquals(
        0,
        st.readAheadIssued(),
        "read-ahead the scan started would fetch chunks only to drop them");
    assertTrue(st.reads() >= 3, "the scan read the MBR and both partitions' heads: " + st.reads());
  }

  @Test
  void aHostileTableShowsNoVolumeFilesAndAWarningWhileTheImageIsServed() throws Exception {
    open(3); // p2 overlaps p1
    mount(Map.of());
    assertEquals(List.of(".", "..", "a.img", ".thaw"), list("/"));
    String logged = logBytes.toString(StandardCharsets.UTF_8);
    assertTrue(logged.contains("warning: MBR partition table of a.img ignored"), logged);
    assertArrayEquals(Arrays.copyOfRange(image, 0, 4096), read("/a.img", 0, 4096));
    assertEquals(-ErrorCodes.ENOENT(), fs.open("/a.img.p1", info(0)));
    assertEquals(1, logged.split("ignored", -1).length - 1, "the image is scanned once");
  }

  @Test
  void aWritableImageHasNoVolumeFiles() throws Exception {
    open(6);
    lives =
        LiveRestores.open(
            images, new LiveRestores.Targets(dir, Map.of(), new LiveRestore.Options(false, 4, 0)));
    mount(lives.all());
    assertEquals(List.of(".", "..", "a.img", ".thaw"), list("/"));
    assertEquals(-ErrorCodes.ENOENT(), fs.open("/a.img.p1", info(0)));
  }

  @Test
  void aVolumeOfSeveralExtentsReadsThemInOrder() throws Exception {
    open(6);
    ImageReader r = images.readers().get("a.img");
    Volume lv =
        new Volume(
            "a.img.vg-lv",
            Volume.Kind.LOGICAL_VOLUME,
            "lvm",
            "linear",
            "linear",
            "vg/lv",
            "",
            List.of(new Extent(4L * MIB - 10, 20), new Extent(100, 30)),
            50,
            "",
            null);
    byte[] got = new byte[45];
    try (ImageReader.Handle h = r.open()) {
      assertEquals(
          45, lv.read(h, 5, 100, (at, data, from, n) -> System.arraycopy(data, from, got, at, n)));
    }
    byte[] want = new byte[45];
    System.arraycopy(image, 4 * MIB - 5, want, 0, 15);
    System.arraycopy(image, 100, want, 15, 30);
    assertArrayEquals(want, got);
  }
}
