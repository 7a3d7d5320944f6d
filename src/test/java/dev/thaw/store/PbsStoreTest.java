package dev.thaw.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.backup.Backup;
import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.RetryPolicy;
import dev.thaw.format.Digest;
import dev.thaw.image.Image;
import dev.thaw.image.Snapshot;
import dev.thaw.restore.Restorer;
import dev.thaw.testing.Fixtures;
import dev.thaw.testing.PbsReaderDouble;
import dev.thaw.testing.TestStores;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;
import okhttp3.tls.HandshakeCertificates;
import okhttp3.tls.HeldCertificate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The pbs store against {@link PbsReaderDouble}, a reader built from the PBS 4.2 sources. */
@Timeout(120)
class PbsStoreTest {
  /** A secret with characters the PBS client percent-encodes, and '%' itself. */
  static final String SECRET = "5e3c a%20b?#{x}";

  static final String READER = "thaw@pbs!reader";
  static final Duration DELAY = Duration.ofMillis(400);

  @TempDir static Path dir;
  static final int FILE_MAX = (int) ChunkStore.MAX_FILE_BYTES;
  static PbsReaderDouble pbs;
  static byte[] image;
  static SnapshotPath snap;

  @BeforeAll
  static void start() throws Exception {
    Path ds = dir.resolve("ds");
    image = Fixtures.image(9, 12345, 7);
    try (WritableStore w = dev.thaw.testing.TestStores.openWritable(ds.toString())) {
      snap = Fixtures.backup(w, dir, image, null);
      Path src = dir.resolve("ct.img");
      Files.write(src, new byte[4096]);
      new Backup(w, "ct", "300", Backup.Options.of(null), 1)
          .run(List.of(new Backup.Source("b.img", src)));
      new Backup(w, "vm", "200", Backup.Options.of(null), 1)
          .run(List.of(new Backup.Source("b.img", src)));
    }
    // PBS keeps a group's owner beside its snapshots and lists no group without one (a backup
    // writes one; vm/200 loses its own here)
    Files.delete(ds.resolve("vm/200/owner"));
    Files.writeString(ds.resolve("vm/100/owner"), "root@pam\n");
    Files.writeString(ds.resolve("ct/300/owner"), READER + "\n");
    // a backup in progress: no manifest yet
    Files.createDirectories(ds.resolve("vm/100/2020-01-01T00:00:00Z"));
    pbs =
        new PbsReaderDouble(
            0,
            Map.of("store1", ds),
            Map.of(
                READER,
                new PbsReaderDouble.Token(SECRET, Set.of("Datastore.Read", "Datastore.Audit")),
                "thaw@pbs!none",
                new PbsReaderDouble.Token("x", Set.of())),
            DELAY);
  }

  @AfterAll
  static void stop() {
    pbs.close();
  }

  static Stores.Options options(String secret, String fingerprint) {
    return Stores.Options.defaults(8)
        .withTimeouts(Duration.ofSeconds(5), Duration.ofSeconds(10))
        .withPbs(new PbsOptions("", fingerprint, secret));
  }

  static ChunkStore open(String authId, String datastore, Stores.Options o) {
    return open(pbs, authId, datastore, o);
  }

  /** A store on {@code server}'s {@code datastore} as {@code authId}. */
  static ChunkStore open(
      PbsReaderDouble server, String authId, String datastore, Stores.Options o) {
    return dev.thaw.testing.TestStores.open(
        "pbs://" + authId + "@127.0.0.1:" + server.port() + ":" + datastore, o);
  }

  static ChunkStore open() throws Exception {
    return open(READER, "store1", options(SECRET, pbs.fingerprint()));
  }

  static byte[] restore(ChunkStore store, Path target) throws Exception {
    return restore(store, target, 8);
  }

  static byte[] restore(ChunkStore store, Path target, int parallel) throws Exception {
    return restore(store, target, parallel, () -> {});
  }

  /** A restore of a.img; {@code opened} runs once the snapshot and index are read. */
  static byte[] restore(ChunkStore store, Path target, int parallel, Runnable opened)
      throws Exception {
    try (FetchPipeline p = new FetchPipeline(store, parallel, 2, RetryPolicy.defaults())) {
      Image img =
          Snapshot.open(store, snap, dev.thaw.image.KeyPolicy.strict(null)).openImage("a.img", p);
      opened.run();
      new Restorer(img, target, new Restorer.Options(false, false, 16, 64L << 20, null)).run();
    }
    return Files.readAllBytes(target);
  }

  @Test
  void restoresThroughOneReaderSessionWithConcurrentStreams() throws Exception {
    int sessions = pbs.sessions();
    int before = pbs.requests().size();
    try (ChunkStore s = open()) {
      assertArrayEquals(image, restore(s, dir.resolve("r1.img")));
    }
    assertEquals(sessions + 1, pbs.sessions(), "one reader session for the snapshot");
    assertTrue(pbs.maxActiveStreams() >= 2, "chunks are fetched as concurrent streams");
    List<String> reqs = pbs.requests().subList(before, pbs.requests().size());
    String upgrade =
        reqs.stream().filter(r -> r.startsWith("GET /api2/json/reader?")).findFirst().orElseThrow();
    assertEquals("store1", PbsReaderDouble.queryValue(upgrade, "store"));
    assertEquals("vm", PbsReaderDouble.queryValue(upgrade, "backup-type"));
    assertEquals("100", PbsReaderDouble.queryValue(upgrade, "backup-id"));
    assertEquals(
        Long.toString(snap.time().getEpochSecond()),
        PbsReaderDouble.queryValue(upgrade, "backup-time"));
    assertEquals("false", PbsReaderDouble.queryValue(upgrade, "debug"));
    assertTrue(reqs.contains("H2 GET /download?file-name=index.json.blob"), reqs.toString());
    assertEquals(1, pbs.firstStreamId(), "streams are numbered from 1, as the PBS client does");
    assertTrue(reqs.contains("H2 GET /download?file-name=a.img.fidx"), reqs.toString());
    assertTrue(
        reqs.stream().anyMatch(r -> r.matches("H2 GET /chunk\\?digest=[0-9a-f]{64}")),
        reqs.toString());
  }

  @Test
  void listsCompleteSnapshotsOfOwnedGroupsSorted() throws Exception {
    try (ChunkStore s = open()) {
      List<SnapshotPath> all = s.listSnapshots();
      assertEquals(
          2, all.size(), all.toString()); // vm/200 has no owner; the 2020 snapshot no manifest
      assertEquals("ct", all.get(0).type());
      assertEquals(snap, all.get(1));
    }
  }

  @Test
  void aChunkIsReadStraightIntoAPooledBufferWhoseArrayComesBackForTheNext() throws Exception {
    dev.thaw.buffer.BufferPool pool = new dev.thaw.buffer.BufferPool(64L << 20);
    try (ChunkStore s = open();
        ChunkStore local =
            TestStores.open(dir.resolve("ds").toString(), Stores.Options.defaults(2))) {
      byte[] fidx = s.readFile(snap, "a.img.fidx"); // registers the index's chunks on the session
      Digest d = Digest.of(fidx, 4096);
      byte[] expected = local.readChunk(d, 1 << 24);
      dev.thaw.buffer.Buffer b = s.readChunk(d, 1 << 24, pool);
      assertEquals(1, pool.taken());
      assertArrayEquals(expected, b.toArray());
      byte[] array = b.array();
      b.release();
      dev.thaw.buffer.Buffer again = s.readChunk(d, 1 << 24, pool);
      assertEquals(1, pool.reused(), "the second read got the first one's array back");
      assertSame(array, again.array());
      assertArrayEquals(expected, again.toArray());
      again.release();
      assertArrayEquals(expected, s.readChunk(d, 1 << 24), "the byte-array read is the same");
    }
  }

  @Test
  void aNewSessionAfterADroppedConnectionRegistersTheIndexAgain() throws Exception {
    int sessions = pbs.sessions();
    int refused = pbs.refusedChunks();
    long fidxBefore =
        pbs.requests().stream().filter(r -> r.endsWith("file-name=a.img.fidx")).count();
    try (ChunkStore s = open()) {
      pbs.dropConnectionsAfterChunks(2);
      // one chunk at a time: chunks after the second are requested after the connection dropped
      assertArrayEquals(image, restore(s, dir.resolve("r2.img"), 1));
    }
    assertTrue(pbs.sessions() >= sessions + 2, "a new session after the dropped one");
    assertEquals(
        refused, pbs.refusedChunks(), "no chunk was asked for before its index was downloaded");
    long fidx = pbs.requests().stream().filter(r -> r.endsWith("file-name=a.img.fidx")).count();
    assertTrue(fidx - fidxBefore >= 2, "the index was downloaded again on the new session");
  }

  @Test
  void aConnectionCutWithoutGoawayIsRetriedOnANewSessionWithoutNoise() throws Exception {
    // Netty logs an exception that reaches the end of a pipeline as a warning with its stack
    // trace, on the user's terminal: a reset connection must be handled, not passed on
    int sessions = pbs.sessions();
    try (NettyWarnings warnings = new NettyWarnings();
        ChunkStore s = open()) {
      // cut while chunk requests wait on a quiet connection: the client's next read is the reset
      byte[] restored =
          restore(
              s,
              dir.resolve("r4.img"),
              4,
              () -> {
                pbs.delayReplies(Duration.ofMillis(300));
                CompletableFuture.delayedExecutor(100, TimeUnit.MILLISECONDS)
                    .execute(pbs::resetConnections);
              });
      pbs.delayReplies(Duration.ZERO);
      assertArrayEquals(image, restored, "the restore went on after the cut");
      // and mid-transfer: cut after two chunks of a restore with four in flight
      pbs.resetConnectionsAfterChunks(2);
      assertArrayEquals(image, restore(s, dir.resolve("r3.img"), 4));
      assertTrue(pbs.sessions() >= sessions + 3, "a new session after each cut one");
      assertEquals(List.of(), warnings.seen(), "nothing logged");
    } finally {
      pbs.delayReplies(Duration.ZERO);
    }
  }

  /** Warnings Netty logs while open; Netty must log through the JDK's logging here. */
  private static final class NettyWarnings extends Handler implements AutoCloseable {
    private final Logger netty = Logger.getLogger("io.netty");
    private final List<String> seen = Collections.synchronizedList(new ArrayList<>());

    NettyWarnings() {
      // else this handler would hear nothing, and a test listening to it could not fail
      assertInstanceOf(
          io.netty.util.internal.logging.JdkLoggerFactory.class,
          io.netty.util.internal.logging.InternalLoggerFactory.getDefaultFactory(),
          "Netty logs through java.util.logging");
      netty.addHandler(this);
    }

    List<String> seen() {
      synchronized (seen) {
        return List.copyOf(seen);
      }
    }

    @Override
    public void publish(LogRecord r) {
      if (r.getLevel().intValue() >= Level.WARNING.intValue()) {
        seen.add(r.getMessage() + ": " + r.getThrown());
      }
    }

    @Override
    public void flush() {}

    @Override
    public void close() {
      netty.removeHandler(this);
    }
  }

  /** A client of the double's store1 as the reader token, its certificate pinned. */
  private PbsClient reader(Duration callTimeout) throws Exception {
    return new PbsClient(
        PbsRepository.parse(READER + "@127.0.0.1:" + pbs.port() + ":store1"),
        SECRET,
        null,
        pbs.fingerprint(),
        Duration.ofSeconds(5),
        Duration.ofSeconds(10),
        callTimeout);
  }

  @Test
  void theServerRefusesAChunkWhoseIndexThisSessionDidNotDownload() throws Exception {
    PbsClient c = reader(Duration.ofSeconds(30));
    try {
      ReaderSession s =
          c.openReader(
              "/api2/json/reader?store=store1&backup-type=vm&backup-id=100&backup-time="
                  + snap.time().getEpochSecond()
                  + "&debug=false");
      byte[] fidx = s.get("/download?file-name=a.img.fidx", FILE_MAX).body();
      String digest = java.util.HexFormat.of().formatHex(fidx, 4096, 4096 + 32);
      s.close();
      ReaderSession fresh =
          c.openReader(
              "/api2/json/reader?store=store1&backup-type=vm&backup-id=100&backup-time="
                  + snap.time().getEpochSecond());
      long t0 = System.nanoTime();
      ReaderSession.Reply refused = fresh.get("/chunk?digest=" + digest, FILE_MAX);
      assertEquals(401, refused.status());
      assertEquals("download chunk " + digest + " not allowed", refused.text());
      assertTrue(System.nanoTime() - t0 >= DELAY.toNanos() * 9 / 10, "401 after the delay");
      assertEquals(200, fresh.get("/download?file-name=a.img.fidx", FILE_MAX).status());
      assertEquals(200, fresh.get("/chunk?digest=" + digest, FILE_MAX).status());
      fresh.close();
    } finally {
      c.close();
    }
    try (ChunkStore s = open()) {
      StoreException e =
          assertThrows(
              StoreException.class, () -> s.readChunk(Digest.parse("12".repeat(32)), 1 << 24));
      assertFalse(e.retryable());
      assertTrue(e.getMessage().contains("no index read from"), e.getMessage());
    }
  }

  @Test
  void theJdksTlsEngineWorksLikeBoringSsl() throws Exception {
    PbsRepository repo = PbsRepository.parse(READER + "@127.0.0.1:" + pbs.port() + ":store1");
    for (String fp : List.of(pbs.fingerprint(), "aa" + pbs.fingerprint().substring(2))) {
      PbsClient c =
          new PbsClient(
              repo,
              SECRET,
              null,
              fp,
              Duration.ofSeconds(5),
              Duration.ofSeconds(10),
              Duration.ofSeconds(30),
              io.netty.handler.ssl.SslProvider.JDK);
      try (PbsStore s = new PbsStore(repo, new PbsOptions("", fp, SECRET), c, null)) {
        if (fp.equals(pbs.fingerprint())) {
          assertArrayEquals(image, restore(s, dir.resolve("jdk.img")));
        } else {
          StoreException e = assertThrows(StoreException.class, s::listSnapshots);
          assertTrue(e.getMessage().contains("does not match"), e.getMessage());
        }
      }
    }
  }

  @Test
  void moreRequestsThanTheServersStreamLimitWaitTheirTurn() throws Exception {
    PbsClient c = reader(Duration.ofSeconds(60));
    ExecutorService pool = Executors.newFixedThreadPool(260);
    pbs.delayReplies(Duration.ofMillis(700)); // every request is open at once
    try {
      ReaderSession s =
          c.openReader(
              "/api2/json/reader?store=store1&backup-type=vm&backup-id=100&backup-time="
                  + snap.time().getEpochSecond()
                  + "&debug=false");
      List<Future<ReaderSession.Reply>> all = new ArrayList<>();
      for (int i = 0; i < 260; i++) {
        all.add(pool.submit(() -> s.get("/download?file-name=a.img.fidx", FILE_MAX)));
      }
      for (Future<ReaderSession.Reply> f : all) {
        assertEquals(200, f.get().status());
      }
      assertEquals(200, pbs.maxActiveStreams(), "the server's 200 streams at once, never more");
      s.close();
    } finally {
      pbs.delayReplies(Duration.ZERO);
      pool.shutdownNow();
      c.close();
    }
  }

  /**
   * Requests that time out together, one of them still queued for a stream slot: the queued one is
   * dropped, never reset, since a RST_STREAM on a stream the server has not seen is a connection
   * error that would end the session (and every other request on it). The session stays usable.
   * Streams 1, 3 and 5 go first so that the two late ones are 7 and 9, which the session's table of
   * requests lists in the order 9, 7: the queued one comes first.
   */
  @Test
  void aQueuedRequestThatTimesOutIsDroppedWithoutResettingAStreamTheServerHasNotSeen()
      throws Exception {
    withOneStreamSlot(
        Duration.ofSeconds(1),
        (s, pool) -> {
          for (int i = 0; i < 3; i++) {
            assertEquals(200, s.get("/download?file-name=a.img.fidx", FILE_MAX).status());
          }
          pbs.delayReplies(Duration.ofSeconds(3)); // stream 7 holds the one slot past the timeout
          Future<ReaderSession.Reply> slow =
              pool.submit(() -> s.get("/download?file-name=a.img.fidx", FILE_MAX));
          Thread.sleep(20); // 7 before 9, and both late at the same tick of the session
          Future<ReaderSession.Reply> queued =
              pool.submit(() -> s.get("/download?file-name=index.json.blob", FILE_MAX));
          for (Future<ReaderSession.Reply> f : List.of(slow, queued)) {
            ExecutionException e = assertThrows(ExecutionException.class, f::get);
            assertTrue(
                e.getCause().getMessage().contains("no complete answer in 1 s"),
                e.getCause().getMessage());
          }
          assertTrue(s.isOpen(), "the session outlives the timeouts");
        });
  }

  /** A request given up while queued for a stream slot is never sent. */
  @Test
  void aQueuedRequestGivenUpIsNeverSent() throws Exception {
    String queuedPath = "/download?file-name=index.json.blob&queued";
    withOneStreamSlot(
        Duration.ofSeconds(30),
        (s, pool) -> {
          pbs.delayReplies(Duration.ofMillis(1500));
          Future<ReaderSession.Reply> slow =
              pool.submit(() -> s.get("/download?file-name=a.img.fidx", FILE_MAX));
          Thread.sleep(200);
          Future<ReaderSession.Reply> queued = pool.submit(() -> s.get(queuedPath, FILE_MAX));
          Thread.sleep(200);
          queued.cancel(true); // interrupts the caller, which gives the request up
          assertEquals(200, slow.get().status());
        });
    // the slot was free again before the session's last request, which the server has answered
    assertFalse(
        pbs.requests().stream().anyMatch(r -> r.endsWith(queuedPath)),
        "the given-up request reached the server: " + pbs.requests());
  }

  /** What a test does on a reader session; {@code pool} runs its concurrent requests. */
  private interface SessionTest {
    void run(ReaderSession s, ExecutorService pool) throws Exception;
  }

  /**
   * Runs {@code test} on a reader session of a server that allows one stream at a time, then checks
   * that the session still serves a request.
   */
  private void withOneStreamSlot(Duration callTimeout, SessionTest test) throws Exception {
    PbsClient c = reader(callTimeout);
    ExecutorService pool = Executors.newFixedThreadPool(2);
    pbs.streamLimit(1);
    try {
      ReaderSession s = c.openReader(readerPath());
      test.run(s, pool);
      pbs.delayReplies(Duration.ZERO);
      assertEquals(200, s.get("/download?file-name=a.img.fidx", FILE_MAX).status());
      s.close();
    } finally {
      pbs.delayReplies(Duration.ZERO);
      pbs.streamLimit(200);
      pool.shutdownNow();
      c.close();
    }
  }

  /**
   * PBS streams a listing, without a length; a large datastore's (here about 98 MB) is listed
   * whole. That it is read as it arrives, not held, is the next test's.
   */
  @Test
  void aListingOfALargeDatastoreIsReadWhole() throws Exception {
    try (ChunkStore s = open()) {
      List<SnapshotPath> own = s.listSnapshots();
      pbs.padListing(200_000);
      List<SnapshotPath> all = s.listSnapshots();
      assertEquals(own.size() + 200_000, all.size());
      assertTrue(all.containsAll(own));
      assertTrue(all.contains(SnapshotPath.parse("vm/pad0/2020-09-13T12:26:40Z")));
    } finally {
      pbs.padListing(0);
    }
  }

  /** A listing's reader that stops reading stops the connection: it holds a few MiB, not all. */
  @Test
  void aListingNotReadStopsTheServerSending() throws Exception {
    PbsClient c = reader(Duration.ofSeconds(30));
    pbs.padListing(200_000);
    long before = pbs.listingBytesSent();
    try (PbsClient.ApiAnswer a = c.get("/api2/json/admin/datastore/store1/snapshots")) {
      Thread.sleep(1500);
      long sent = pbs.listingBytesSent() - before;
      // 8 MiB waiting in the answer, and what the sockets' buffers on both ends hold
      assertTrue(sent < 40 << 20, sent + " bytes sent while nobody read");
      long all = a.transferTo(java.io.OutputStream.nullOutputStream());
      assertTrue(all > 90 << 20, all + " bytes in the listing");
    } finally {
      pbs.padListing(0);
      c.close();
    }
  }

  private static String readerPath() {
    return "/api2/json/reader?store=store1&backup-type=vm&backup-id=100&backup-time="
        + snap.time().getEpochSecond()
        + "&debug=false";
  }

  @Test
  void aWrongSecretFailsOnceAfterTheServersDelayAndIsNeverPrinted() throws Exception {
    int failures = pbs.authFailures();
    try (ChunkStore s =
        RetryPolicy.defaults()
            .retryingFileReads(
                open(READER, "store1", options("wrong-" + SECRET, pbs.fingerprint())))) {
      long t0 = System.nanoTime();
      StoreException e =
          assertThrows(StoreException.class, () -> s.readFile(snap, "index.json.blob"));
      assertTrue(System.nanoTime() - t0 >= DELAY.toNanos() * 9 / 10);
      assertFalse(e.retryable());
      assertTrue(e.getMessage().contains("refused the API token " + READER), e.getMessage());
      assertFalse(e.getMessage().contains(SECRET), "the secret is never in a message");
      assertEquals(failures + 1, pbs.authFailures(), "a 401 is not retried");
      StoreException l = assertThrows(StoreException.class, s::listSnapshots);
      assertTrue(l.getMessage().contains("refused the API token"), l.getMessage());
    }
  }

  @Test
  void missingPrivilegesAreReportedAsPermissionDenied() throws Exception {
    try (ChunkStore s = open("thaw@pbs!none", "store1", options("x", pbs.fingerprint()))) {
      StoreException r =
          assertThrows(StoreException.class, () -> s.readFile(snap, "index.json.blob"));
      assertFalse(r.retryable());
      assertTrue(
          r.getMessage().contains("permission denied")
              && r.getMessage().contains("no permissions on /datastore/store1"),
          r.getMessage());
      StoreException l = assertThrows(StoreException.class, s::listSnapshots);
      assertTrue(
          l.getMessage().contains("permission denied") && l.getMessage().contains("HTTP 403"),
          l.getMessage());
    }
  }

  @Test
  void unknownDatastoreAndSnapshotSayWhatIsMissing() throws Exception {
    try (ChunkStore s = open(READER, "nostore", options(SECRET, pbs.fingerprint()))) {
      StoreException e =
          assertThrows(StoreException.class, () -> s.readFile(snap, "index.json.blob"));
      assertFalse(e.retryable());
      assertTrue(e.getMessage().contains("datastore 'nostore' does not exist"), e.getMessage());
    }
    try (ChunkStore s = open()) {
      SnapshotPath gone = SnapshotPath.parse("vm/100/2001-02-03T04:05:06Z");
      NotFoundException e =
          assertThrows(NotFoundException.class, () -> s.readFile(gone, "index.json.blob"));
      assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
      assertThrows(NotFoundException.class, () -> s.readFile(snap, "other.img.fidx"));
      assertThrows(NotFoundException.class, () -> s.readFile(snap, "other.blob"));
    }
  }

  @Test
  void aCertificateIsTrustedByFingerprintOrByChainValidation() throws Exception {
    String wrong =
        "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff";
    try (ChunkStore s = open(READER, "store1", options(SECRET, wrong))) {
      StoreException e = assertThrows(StoreException.class, s::listSnapshots);
      assertFalse(e.retryable());
      assertTrue(
          e.getMessage().contains(pbs.fingerprint()) && e.getMessage().contains("does not match"),
          e.getMessage());
    }
    try (ChunkStore s = open(READER, "store1", options(SECRET, null))) {
      StoreException e = assertThrows(StoreException.class, s::listSnapshots);
      assertTrue(
          e.getMessage().contains("not trusted") && e.getMessage().contains(pbs.fingerprint()),
          e.getMessage());
    }
    Path ca = dir.resolve("pbs-cert.pem");
    Files.writeString(ca, pbs.certificate().certificatePem());
    try (ChunkStore s = open(READER, "store1", options(SECRET, null).withTls(ca, null))) {
      assertEquals(
          2, s.listSnapshots().size(), "a certificate that validates needs no fingerprint");
    }
  }

  @Test
  void aCertificateSignedByTheCaFileButForAnotherNameIsRefused() throws Exception {
    HeldCertificate ca = new HeldCertificate.Builder().certificateAuthority(0).build();
    HeldCertificate elsewhere =
        new HeldCertificate.Builder()
            .commonName("pbs.example")
            .addSubjectAlternativeName("pbs.example")
            .signedBy(ca)
            .build();
    Path caFile = dir.resolve("other-ca.pem");
    Files.writeString(caFile, ca.certificatePem());
    try (PbsReaderDouble other =
        new PbsReaderDouble(
            0,
            Map.of("store1", dir.resolve("ds")),
            Map.of(
                READER,
                new PbsReaderDouble.Token(SECRET, Set.of("Datastore.Read", "Datastore.Audit"))),
            Duration.ZERO,
            elsewhere)) {
      try (ChunkStore s =
          open(other, READER, "store1", options(SECRET, null).withTls(caFile, null))) {
        // the listing, then a reader session: both check the name the certificate is for
        StoreException listing = assertThrows(StoreException.class, s::listSnapshots);
        assertTrue(
            listing.getMessage().contains("issued for another host name"), listing.getMessage());
        StoreException session =
            assertThrows(StoreException.class, () -> s.readFile(snap, "index.json.blob"));
        assertTrue(
            session.getMessage().contains("issued for another host name"), session.getMessage());
      }
      assertEquals(0, other.sessions(), "no reader session was opened");
    }
  }

  @Test
  void theDoubleParsesTokensAsPbsDoes() throws Exception {
    HandshakeCertificates trust =
        new HandshakeCertificates.Builder()
            .addTrustedCertificate(pbs.certificate().certificate())
            .build();
    OkHttpClient http =
        new OkHttpClient.Builder()
            .sslSocketFactory(trust.sslSocketFactory(), trust.trustManager())
            .build();
    String url = "https://127.0.0.1:" + pbs.port() + "/api2/json/admin/datastore/store1/snapshots";
    String encoded = PbsClient.encodeSecret(SECRET);
    assertFalse(encoded.contains(" ") || encoded.contains("?") || encoded.contains("#"), encoded);
    try (Response r =
        http.newCall(
                new Request.Builder()
                    .url(url)
                    .header("Authorization", "PBSAPIToken=" + READER + ":" + encoded)
                    .build())
            .execute()) {
      assertEquals(200, r.code(), "'=' after the prefix is accepted");
      assertTrue(r.body().string().startsWith("{\"data\":["));
    }
    try (Response r =
        http.newCall(
                new Request.Builder()
                    .url(url)
                    .header("Authorization", "PBSAPIToken " + READER + ":" + encoded)
                    .header("Cookie", "PBSAuthCookie=PBS:invalid")
                    .build())
            .execute()) {
      assertEquals(401, r.code(), "an auth cookie takes precedence over the token");
      assertEquals("authentication failed", r.body().string());
      assertEquals(
          null, r.header("Content-Type"), "the 401 body is plain text without a content type");
    }
    try (Response r =
        http.newCall(
                new Request.Builder()
                    .url(url)
                    .header("Authorization", "PBSAPITokenX " + READER + ":" + encoded)
                    .build())
            .execute()) {
      assertEquals(401, r.code());
    }
    try (Response r =
        http.newCall(
                new Request.Builder()
                    .url(
                        "https://127.0.0.1:"
                            + pbs.port()
                            + "/api2/json/admin/datastore/store1/snapshots")
                    .header("Authorization", "PBSAPIToken thaw@pbs!none:x")
                    .build())
            .execute()) {
      assertEquals(403, r.code());
      assertTrue(
          r.header("Content-Type").startsWith("application/json"),
          "a handler's error has a JSON type");
      assertTrue(r.body().string().startsWith("permission check failed"), "but a plain-text body");
    }
    http.connectionPool().evictAll();
  }

  @Test
  void repositoriesParseAsThePbsClientParsesThem() {
    PbsRepository r = PbsRepository.parse("mystore");
    assertEquals("root@pam@localhost:8007:mystore", r.toString());
    assertFalse(r.isToken());
    r = PbsRepository.parse("admin@pam@backuphost:8008:tank");
    assertEquals("admin@pam", r.authId());
    assertEquals("backuphost", r.host());
    assertEquals(8008, r.port());
    r = PbsRepository.parse("192.168.1.1:1234:mystore");
    assertEquals("192.168.1.1", r.host());
    assertEquals(1234, r.port());
    r = PbsRepository.parse("[ff80::1]:9007:mystore");
    assertEquals("[ff80::1]", r.host());
    assertEquals("ff80::1", r.socketHost());
    r = PbsRepository.parse("user@pbs!token@myhost:mystore");
    assertEquals("user@pbs!token", r.authId());
    assertTrue(r.isToken());
    assertEquals(8007, r.port());
    for (String bad : List.of("", "a/b", "host:", "x@host:st", "host:99999:store")) {
      assertThrows(IllegalArgumentException.class, () -> PbsRepository.parse(bad), bad);
    }
    assertEquals(List.of("a", "b"), PbsRepository.parseNamespace("a/b"));
    assertThrows(
        IllegalArgumentException.class, () -> PbsRepository.parseNamespace("a/b/c/d/e/f/g/h"));
    assertRefusedToOpen("pbs://root@pam@127.0.0.1:store1", SECRET, "API token");
    assertRefusedToOpen("pbs://j\u00fcrgen@pbs!t@127.0.0.1:store1", SECRET, "is not ASCII");
    assertRefusedToOpen("pbs://" + READER + "@127.0.0.1:store1", null, "PBS_PASSWORD");
    assertThrows(
        IllegalArgumentException.class,
        () -> Stores.access(options(SECRET, null)).openWritable("pbs://" + READER + "@h:store1"));
    assertFalse(options(SECRET, null).toString().contains(SECRET));
    assertNotNull(
        assertInstanceOf(
            IllegalArgumentException.class,
            assertThrows(IllegalArgumentException.class, () -> new PbsOptions("", "zz", SECRET))));
  }

  /** Opening {@code spec} with {@code secret} is refused with a message holding {@code why}. */
  private static void assertRefusedToOpen(String spec, String secret, String why) {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> dev.thaw.testing.TestStores.open(spec, options(secret, null)),
            spec);
    assertTrue(e.getMessage().contains(why), e.getMessage());
  }

  @Test
  void snapshotNamesAreRelativeToTheNamespace() throws Exception {
    int before = pbs.requests().size();
    Stores.Options o =
        Stores.Options.defaults(2).withPbs(new PbsOptions("site/a", pbs.fingerprint(), SECRET));
    try (ChunkStore s =
        dev.thaw.testing.TestStores.open(
            "pbs://" + READER + "@127.0.0.1:" + pbs.port() + ":store1", o)) {
      assertThrows(
          NotFoundException.class,
          () -> s.readFile(SnapshotPath.parse("ns/x/" + snap), "index.json.blob"));
      assertEquals(List.of(), s.listSnapshots());
    }
    List<String> reqs = pbs.requests().subList(before, pbs.requests().size());
    assertTrue(
        reqs.stream()
            .anyMatch(
                r ->
                    r.startsWith("GET /api2/json/reader?")
                        && "site/a/x".equals(PbsReaderDouble.queryValue(r, "ns"))),
        reqs.toString());
    assertTrue(
        reqs.stream()
            .anyMatch(
                r ->
                    r.startsWith("GET /api2/json/admin/datastore/store1/snapshots?")
                        && "site/a".equals(PbsReaderDouble.queryValue(r, "ns"))),
        reqs.toString());
  }
}
