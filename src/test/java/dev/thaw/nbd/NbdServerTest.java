package dev.thaw.nbd;

import static dev.thaw.nbd.Protocol.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.RetryPolicy;
import dev.thaw.format.Digest;
import dev.thaw.image.ChunkCache;
import dev.thaw.image.Image;
import dev.thaw.image.ImageReader;
import dev.thaw.image.KeyPolicy;
import dev.thaw.image.Snapshot;
import dev.thaw.restore.LiveRestore;
import dev.thaw.restore.Restorer;
import dev.thaw.store.SnapshotPath;
import dev.thaw.testing.Fixtures;
import dev.thaw.testing.MemoryStore;
import dev.thaw.volume.Volume;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(60)
class NbdServerTest {
  private static final int MIB = Fixtures.MIB;
  @TempDir Path dir;
  private final MemoryStore store = new MemoryStore();
  private final ByteArrayOutputStream logBytes = new ByteArrayOutputStream();
  private FetchPipeline pipeline;
  private byte[] image;
  private Image img;
  private NbdServer server;
  private Path socket;

  @BeforeEach
  void setUp() throws Exception {
    image = Fixtures.image(3, 1000, 5); // random, text, zero chunk, 1000 random bytes
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    pipeline =
        new FetchPipeline(
            store, 4, 2, new RetryPolicy(2, Duration.ofMillis(1), Duration.ofMillis(2)));
    img = Snapshot.open(store, snap, KeyPolicy.strict(null)).openImage("a.img", pipeline);
    socket = dir.resolve("nbd.sock");
  }

  @AfterEach
  void tearDown() {
    if (server != null) {
      server.shutdown(Duration.ofSeconds(5));
    }
    pipeline.close();
  }

  private ImageReader reader() {
    return new ImageReader(
        img, new ChunkCache(64L * MIB), new ImageReader.Settings(4, 0, Duration.ofSeconds(20)));
  }

  private void serve(Export... exports) throws IOException {
    server =
        new NbdServer(
            List.of(exports),
            new NbdServer.Options(8, 64 << 20, 16),
            new PrintStream(logBytes, true));
    server.listen(UnixDomainSocketAddress.of(socket));
  }

  private TestClient client() throws IOException {
    return new TestClient(socket);
  }

  private static long flagsOf(TestClient.OptReply info) {
    ByteBuffer b = ByteBuffer.wrap(info.data());
    assertEquals(INFO_EXPORT, b.getShort());
    b.getLong();
    return b.getShort() & 0xffff;
  }

  @Test
  void structuredReadsStateZeroChunksAsHolesAndBlockStatusMapsThem() throws Exception {
    serve(Exports.readOnly(reader()));
    try (TestClient c = client().go("a.img", true, true)) {
      assertEquals(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, c.handshakeFlags);
      int len = 12 * MIB + 1000;
      c.request(0, CMD_READ, 7, 0, len, null);
      List<TestClient.Reply> chunks = c.chunks();
      assertArrayEquals(image, c.assemble(chunks, 0, len));
      assertTrue(
          chunks.stream().anyMatch(r -> r.type() == REPLY_TYPE_OFFSET_HOLE),
          "the zero chunk is a hole");
      assertTrue(chunks.stream().allMatch(r -> r.cookie() == 7));

      c.request(CMD_FLAG_DF, CMD_READ, 8, 7 * MIB, 2 * MIB, null); // data and hole, not fragmented
      List<TestClient.Reply> df = c.chunks();
      assertEquals(1, df.size());
      assertEquals(REPLY_TYPE_OFFSET_DATA, df.get(0).type());
      assertArrayEquals(
          Arrays.copyOfRange(image, 7 * MIB, 9 * MIB), c.assemble(df, 7 * MIB, 2 * MIB));

      c.request(0, CMD_BLOCK_STATUS, 9, 0, len, null);
      TestClient.Reply bs = c.reply(0);
      assertEquals(REPLY_TYPE_BLOCK_STATUS, bs.type());
      assertTrue(bs.done());
      ByteBuffer p = ByteBuffer.wrap(bs.payload());
      assertEquals(Handshake.ALLOCATION_CONTEXT_ID, p.getInt());
      assertEquals(
          List.of(8L * MIB, 0L, 4L * MIB, (long) (STATE_HOLE | STATE_ZERO), 1000L, 0L),
          descriptors(p));

      c.request(
          CMD_FLAG_REQ_ONE, CMD_BLOCK_STATUS, 10, 9 * MIB, MIB, null); // inside the zero chunk
      ByteBuffer one = ByteBuffer.wrap(c.reply(0).payload());
      one.getInt();
      assertEquals(List.of((long) MIB, (long) (STATE_HOLE | STATE_ZERO)), descriptors(one));
    }
  }

  @Test
  void aVolumeExportReadsItsExtentsAndMapsTheImagesHoles() throws Exception {
    // image bytes [6, 10) MiB (text, then zeros), then [0, 1) MiB (random)
    Volume lv =
        new Volume(
            "a.img.vg-lv",
            Volume.Kind.LOGICAL_VOLUME,
            "lvm",
            "linear",
            "linear",
            "vg/lv",
            "",
            List.of(
                new dev.thaw.volume.Extent(6L * MIB, 4L * MIB), new dev.thaw.volume.Extent(0, MIB)),
            5L * MIB,
            "",
            null);
    serve(Exports.readOnly(reader()), Exports.volume(reader(), lv));
    try (TestClient c = client().go("a.img.vg-lv", true, true)) {
      c.request(0, CMD_READ, 1, 0, 5 * MIB, null);
      byte[] want = new byte[5 * MIB];
      System.arraycopy(image, 6 * MIB, want, 0, 4 * MIB);
      System.arraycopy(image, 0, want, 4 * MIB, MIB);
      assertArrayEquals(want, c.assemble(c.chunks(), 0, 5 * MIB));
      c.request(0, CMD_BLOCK_STATUS, 2, 0, 5L * MIB, null);
      ByteBuffer p = ByteBuffer.wrap(c.reply(0).payload());
      p.getInt();
      assertEquals(
          List.of(2L * MIB, 0L, 2L * MIB, (long) (STATE_HOLE | STATE_ZERO), (long) MIB, 0L),
          descriptors(p));
    }
  }

  private static List<Long> descriptors(ByteBuffer p) {
    List<Long> d = new ArrayList<>();
    while (p.hasRemaining()) {
      d.add(Integer.toUnsignedLong(p.getInt()));
      d.add((long) p.getInt());
    }
    return d;
  }

  @Test
  void exportNameEndsTheHandshakeWithOrWithoutThePadding() throws Exception {
    serve(Exports.readOnly(reader()));
    for (int clientFlags :
        new int[] {FLAG_C_FIXED_NEWSTYLE, FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES, 0}) {
      try (TestClient c = client().greet(clientFlags)) {
        c.option(OPT_EXPORT_NAME, new byte[0]); // the default export
        assertEquals(image.length, c.in.readLong());
        int flags = c.in.readUnsignedShort();
        assertEquals(FLAG_HAS_FLAGS | FLAG_READ_ONLY | FLAG_CAN_MULTI_CONN, flags);
        if ((clientFlags & FLAG_C_NO_ZEROES) == 0) {
          byte[] zeros = new byte[124];
          c.in.readFully(zeros);
          assertArrayEquals(new byte[124], zeros);
        }
        c.request(0, CMD_READ, 1, 4 * MIB - 10, 20, null); // simple reply
        TestClient.Reply r = c.reply(20);
        assertEquals(-1, r.type());
        assertEquals(0, r.error());
        assertArrayEquals(Arrays.copyOfRange(image, 4 * MIB - 10, 4 * MIB + 10), r.payload());
      }
    }
    try (TestClient c = client().greet(1 << 5)) {
      assertTrue(c.closedByServer(), "unknown client flags end the connection");
    }
  }

  @Test
  void optionsAreAnsweredAndBadOnesRefusedWithoutEndingTheHandshake() throws Exception {
    serve(Exports.readOnly(reader()), new MemExport(new byte[4096], true));
    try (TestClient c = client().greet(FLAG_C_FIXED_NEWSTYLE)) {
      TestClient.OptReply r = c.ask(99, new byte[] {1, 2, 3}).get(0);
      assertEquals(REP_ERR_UNSUP, r.type());
      assertEquals(99, r.option());
      assertEquals(REP_ERR_INVALID, c.ask(OPT_LIST, new byte[] {1}).get(0).type());
      assertEquals(REP_ERR_POLICY, c.ask(OPT_STARTTLS, new byte[0]).get(0).type());
      assertEquals(
          REP_ERR_INVALID,
          c.ask(OPT_SET_META_CONTEXT, TestClient.metaQuery("a.img", BASE_ALLOCATION)).get(0).type(),
          "metadata needs structured replies");
      TestClient.OptReply unknown = c.ask(OPT_INFO, TestClient.nameAndInfos("nope")).get(0);
      assertEquals(REP_ERR_UNKNOWN, unknown.type());
      assertTrue(unknown.text().contains("a.img, rw"), unknown.text());
      assertEquals(
          REP_ERR_INVALID,
          c.ask(OPT_GO, new byte[] {0, 0, 0, 9, 'a'}).get(0).type(),
          "a name past the end");

      List<TestClient.OptReply> list = c.ask(OPT_LIST, new byte[0]);
      assertEquals(3, list.size());
      assertEquals(REP_SERVER, list.get(0).type());
      assertTrue(list.get(0).text().contains("a.img") && list.get(1).text().contains("rw"));

      List<TestClient.OptReply> info =
          c.ask(OPT_INFO, TestClient.nameAndInfos("rw", INFO_NAME, INFO_BLOCK_SIZE));
      assertEquals(REP_ACK, info.get(info.size() - 1).type());
      assertEquals(
          FLAG_HAS_FLAGS
              | FLAG_SEND_FLUSH
              | FLAG_SEND_FUA
              | FLAG_SEND_TRIM
              | FLAG_SEND_WRITE_ZEROES
              | FLAG_CAN_MULTI_CONN,
          flagsOf(info.get(0)));
      assertTrue(
          info.stream()
              .anyMatch(
                  i ->
                      i.type() == REP_INFO
                          && i.data()[1] == INFO_BLOCK_SIZE
                          && ByteBuffer.wrap(i.data()).getInt(10) == MAX_PAYLOAD));

      assertEquals(REP_ACK, c.ask(OPT_STRUCTURED_REPLY, new byte[0]).get(0).type());
      assertEquals(
          REP_ERR_INVALID, c.ask(OPT_STRUCTURED_REPLY, new byte[0]).get(0).type(), "twice");
      List<TestClient.OptReply> ctx =
          c.ask(OPT_LIST_META_CONTEXT, TestClient.metaQuery("a.img", "base:"));
      assertEquals(REP_META_CONTEXT, ctx.get(0).type());
      assertTrue(ctx.get(0).text().endsWith(BASE_ALLOCATION));
      assertEquals(
          1,
          c.ask(OPT_SET_META_CONTEXT, TestClient.metaQuery("a.img", "base:", "x-other:thing"))
              .size(),
          "no context selected: only the ACK");
      assertEquals(
          REP_ERR_INVALID,
          c.ask(OPT_SET_META_CONTEXT, TestClient.metaQuery("a.img", "nocolon")).get(0).type());

      TestClient.OptReply abort = c.ask(OPT_ABORT, new byte[0]).get(0);
      assertEquals(REP_ACK, abort.type());
      assertTrue(c.closedByServer());
    }
  }

  @Test
  void refusedRequestsGetTheirErrnoAndTheConnectionGoesOn() throws Exception {
    MemExport rw = new MemExport(new byte[8192], true);
    serve(Exports.readOnly(reader()), rw);
    try (TestClient c = client().go("a.img", false, false)) {
      c.request(0, CMD_WRITE, 1, 0, 4, new byte[4]);
      assertEquals(EPERM, c.reply(0).error());
      c.request(0, CMD_TRIM, 2, 0, 4096, null);
      assertEquals(EPERM, c.reply(0).error());
      c.request(0, CMD_READ, 3, image.length - 10, 11, null);
      assertEquals(EINVAL, c.reply(0).error(), "a read past the end");
      c.request(0, 42, 4, 0, 0, null);
      assertEquals(EINVAL, c.reply(0).error(), "an unknown command");
      c.request(CMD_FLAG_REQ_ONE, CMD_READ, 5, 0, 10, null);
      assertEquals(EINVAL, c.reply(0).error(), "a flag that is not the read's");
      c.request(0, CMD_BLOCK_STATUS, 6, 0, 10, null);
      assertEquals(EINVAL, c.reply(0).error(), "block status without a context");
      c.request(0, CMD_READ, 7, 0, 10, null);
      assertArrayEquals(Arrays.copyOf(image, 10), c.reply(10).payload(), "still serving");
    }
    try (TestClient c = client().go("rw", true, false)) {
      c.request(0, CMD_WRITE, 1, 8190, 4, new byte[4]);
      TestClient.Reply r = c.reply(0);
      assertEquals(ENOSPC, r.error());
      assertEquals(REPLY_TYPE_ERROR, r.type());
      assertTrue(
          new String(r.payload(), 6, r.payload().length - 6, StandardCharsets.UTF_8)
              .contains("8192 bytes"));
      c.request(0, CMD_WRITE_ZEROES, 2, 8000, 193, null);
      assertEquals(ENOSPC, c.reply(0).error());
      c.request(CMD_FLAG_FUA, CMD_WRITE, 3, 100, 3, new byte[] {1, 2, 3});
      assertEquals(0, c.reply(0).error());
      assertEquals(1, rw.flushes.get(), "FUA flushes");
      assertArrayEquals(new byte[] {1, 2, 3}, Arrays.copyOfRange(rw.data, 100, 103));
      c.request(CMD_FLAG_NO_HOLE, CMD_WRITE_ZEROES, 4, 101, 1, null);
      assertEquals(0, c.reply(0).error());
      assertArrayEquals(new byte[] {1, 0, 3}, Arrays.copyOfRange(rw.data, 100, 103));
      c.request(0, CMD_FLUSH, 5, 0, 0, null);
      assertEquals(0, c.reply(0).error());
      assertEquals(2, rw.flushes.get());
    }
  }

  @Test
  void aChunkThatCannotBeVerifiedIsAnEioNeverWrongBytes() throws Exception {
    Digest bad = img.digest(1);
    byte[] broken = store.raw(bad).clone();
    broken[100] ^= 1;
    store.putRaw(bad, broken);
    serve(Exports.readOnly(reader()));
    try (TestClient c = client().go("a.img", true, false)) {
      c.request(0, CMD_READ, 1, 4 * MIB - 100, 200, null);
      List<TestClient.Reply> r = c.chunks();
      assertEquals(1, r.size(), "no data chunk, only the error");
      assertEquals(EIO, r.get(0).error());
      String message =
          new String(r.get(0).payload(), 6, r.get(0).payload().length - 6, StandardCharsets.UTF_8);
      assertTrue(message.contains(bad.hex()), message);
      c.request(0, CMD_READ, 2, 0, 100, null);
      assertArrayEquals(
          Arrays.copyOf(image, 100), c.assemble(c.chunks(), 0, 100), "the next read is served");
    }
    try (TestClient c = client().go("a.img", false, false)) {
      c.request(0, CMD_READ, 1, 4 * MIB, 10, null);
      TestClient.Reply r = c.reply(10);
      assertEquals(EIO, r.error());
      assertEquals(0, r.payload().length);
      c.request(0, CMD_READ, 2, 0, 10, null);
      assertArrayEquals(
          Arrays.copyOf(image, 10), c.reply(10).payload(), "no payload was sent with the error");
    }
    assertTrue(
        logBytes.toString(StandardCharsets.UTF_8).contains(bad.hex()), "the log names the chunk");
  }

  @Test
  void requestsAreServedInParallelAndAnsweredByCookie() throws Exception {
    byte[] data = new byte[1 << 16];
    new Random(1).nextBytes(data);
    MemExport e = new MemExport(data, false);
    e.gate = new CountDownLatch(1);
    serve(e);
    try (TestClient c = client().go("ro", true, false)) {
      for (int i = 0; i < 8; i++) {
        c.request(0, CMD_READ, 100 + i, i * 1024L, 1024, null);
      }
      long deadline = System.nanoTime() + 10_000_000_000L;
      while (e.reading.get() < 8 && System.nanoTime() < deadline) {
        Thread.sleep(5);
      }
      assertEquals(8, e.reading.get(), "all eight reads are under way at once");
      e.gate.countDown();
      Set<Long> cookies = new HashSet<>();
      for (int i = 0; i < 8; i++) {
        List<TestClient.Reply> r = c.chunks();
        long cookie = r.get(0).cookie();
        int k = (int) (cookie - 100);
        assertArrayEquals(
            Arrays.copyOfRange(data, k * 1024, k * 1024 + 1024), c.assemble(r, k * 1024L, 1024));
        cookies.add(cookie);
      }
      assertEquals(8, cookies.size());
    }
  }

  @Test
  void disconnectAnswersWhatIsInFlightFirst() throws Exception {
    MemExport e = new MemExport(new byte[4096], false);
    e.gate = new CountDownLatch(1);
    serve(e);
    try (TestClient c = client().go("ro", false, false)) {
      c.request(0, CMD_READ, 1, 0, 100, null);
      c.request(0, CMD_DISC, 2, 0, 0, null);
      Thread.sleep(200);
      e.gate.countDown();
      TestClient.Reply r = c.reply(100);
      assertEquals(1, r.cookie());
      assertEquals(0, r.error());
      assertTrue(c.closedByServer());
    }
    // a client that vanishes in the middle of a write payload leaves the server serving
    try (TestClient c = client().go("ro", false, false)) {
      c.request(0, CMD_WRITE, 1, 0, 1000, new byte[10]);
    }
    try (TestClient c = client().go("ro", false, false)) {
      c.request(0, CMD_READ, 1, 0, 10, null);
      assertEquals(0, c.reply(10).error());
    }
  }

  @Test
  void shutdownAnswersNewRequestsWithEshutdownFinishesOthersAndRemovesTheSocket() throws Exception {
    MemExport e = new MemExport(new byte[4096], false);
    e.gate = new CountDownLatch(1);
    serve(e);
    assertTrue(Files.exists(socket));
    try (TestClient c = client().go("ro", true, false)) {
      c.request(0, CMD_READ, 1, 0, 100, null);
      while (e.reading.get() == 0) {
        Thread.sleep(5);
      }
      Thread stopper = new Thread(() -> server.shutdown(Duration.ofSeconds(10)));
      stopper.start();
      while (Files.exists(socket)) {
        Thread.sleep(5);
      }
      c.request(0, CMD_READ, 2, 0, 100, null);
      TestClient.Reply refused = c.reply(0);
      assertEquals(2, refused.cookie());
      assertEquals(ESHUTDOWN, refused.error());
      e.gate.countDown();
      List<TestClient.Reply> r = c.chunks();
      assertEquals(1, r.get(0).cookie());
      assertEquals(0, r.get(0).error(), "the read under way is answered");
      stopper.join();
      assertTrue(c.closedByServer());
    }
    assertFalse(Files.exists(socket));
  }

  @Test
  void aSocketFileLeftBehindIsReplacedAndALiveOneRefused() throws Exception {
    serve(new MemExport(new byte[512], false));
    NbdServer second =
        new NbdServer(
            List.of(new MemExport(new byte[512], false)),
            NbdServer.Options.defaults(),
            new PrintStream(logBytes, true));
    IOException busy =
        assertThrows(IOException.class, () -> second.listen(UnixDomainSocketAddress.of(socket)));
    assertTrue(busy.getMessage().contains("listening"), busy.getMessage());
    // a socket file nobody answers on: what a killed server leaves
    Path stale = dir.resolve("stale.sock");
    try (var ch =
        java.nio.channels.ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
      ch.bind(UnixDomainSocketAddress.of(stale));
    }
    assertTrue(Files.exists(stale));
    second.listen(UnixDomainSocketAddress.of(stale));
    try (TestClient c = new TestClient(stale).go("ro", false, false)) {
      c.request(0, CMD_READ, 1, 0, 10, null);
      assertEquals(0, c.reply(10).error());
    }
    second.shutdown(Duration.ofSeconds(5));
    Files.writeString(stale, "not a socket");
    NbdServer third =
        new NbdServer(
            List.of(new MemExport(new byte[512], false)),
            NbdServer.Options.defaults(),
            new PrintStream(logBytes, true));
    assertThrows(IOException.class, () -> third.listen(UnixDomainSocketAddress.of(stale)));
    third.shutdown(Duration.ofSeconds(1));
  }

  @Test
  void aWritableExportWritesThroughTheLiveRestoreAndZeroesWholeChunksWithoutFetching()
      throws Exception {
    Path target = dir.resolve("target.img");
    ImageReader r = reader();
    try (LiveRestore live =
        LiveRestore.open(
            r, target, Restorer.defaultStateFile(target), new LiveRestore.Options(false, 4, 0))) {
      serve(Exports.writable(r, live, "overlay"));
      byte[] expected = image.clone();
      try (TestClient c = client().go("a.img", true, true)) {
        int reads = store.totalReads();
        c.request(0, CMD_WRITE_ZEROES, 1, 0, 4 * MIB, null); // chunk 0 whole
        assertEquals(0, c.reply(0).error());
        Arrays.fill(expected, 0, 4 * MIB, (byte) 0);
        c.request(CMD_FLAG_FUA, CMD_TRIM, 2, 12 * MIB, 1000, null); // the last chunk whole
        assertEquals(0, c.reply(0).error());
        assertEquals(reads, store.totalReads(), "zeroed and discarded chunks are not fetched");
        Arrays.fill(expected, 12 * MIB, expected.length, (byte) 0);

        byte[] w = "written through nbd".getBytes(StandardCharsets.UTF_8);
        c.request(
            CMD_FLAG_FUA, CMD_WRITE, 3, 4 * MIB + 5, w.length, w); // chunk 1 is completed first
        assertEquals(0, c.reply(0).error());
        System.arraycopy(w, 0, expected, 4 * MIB + 5, w.length);
        c.request(0, CMD_WRITE_ZEROES, 4, 4 * MIB + 6, 3, null); // part of a chunk
        assertEquals(0, c.reply(0).error());
        Arrays.fill(expected, 4 * MIB + 6, 4 * MIB + 9, (byte) 0);
        c.request(0, CMD_FLUSH, 5, 0, 0, null);
        assertEquals(0, c.reply(0).error());

        c.request(0, CMD_READ, 6, 0, expected.length, null);
        assertArrayEquals(expected, c.assemble(c.chunks(), 0, expected.length));
        c.request(0, CMD_BLOCK_STATUS, 7, 0, expected.length, null);
        ByteBuffer p = ByteBuffer.wrap(c.reply(0).payload());
        p.getInt();
        assertEquals(
            List.of(8L * MIB, 0L, 4L * MIB, (long) (STATE_HOLE | STATE_ZERO), 1000L, 0L),
            descriptors(p),
            "chunks in the target are data, the zero chunk not yet written a hole");
      }
      assertEquals(3, live.progress().present());
    }
    try (LiveRestore again =
        LiveRestore.open(
            reader(),
            target,
            Restorer.defaultStateFile(target),
            new LiveRestore.Options(false, 4, 0))) {
      assertEquals(3, again.progress().present(), "what was written is recorded durably");
    }
  }
}
