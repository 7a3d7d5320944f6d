package dev.thaw.restore;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.PipelineStats;
import dev.thaw.fetch.RetryPolicy;
import dev.thaw.format.BlobCodec;
import dev.thaw.format.Digest;
import dev.thaw.image.Image;
import dev.thaw.image.KeyPolicy;
import dev.thaw.image.Snapshot;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.SnapshotPath;
import dev.thaw.store.StoreException;
import dev.thaw.store.Stores;
import dev.thaw.testing.Fixtures;
import dev.thaw.testing.MemoryStore;
import dev.thaw.testing.TestStores;
import dev.thaw.testing.TlsServers;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import okhttp3.mockwebserver.Dispatcher;
import okhttp3.mockwebserver.MockResponse;
import okhttp3.mockwebserver.MockWebServer;
import okhttp3.mockwebserver.RecordedRequest;
import okhttp3.mockwebserver.SocketPolicy;
import okio.Buffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The network fault suite: a whole restore ({@link Restorer} over {@link FetchPipeline} over the
 * real HTTP store) of a multi-chunk image from a server that misbehaves. Each case ends with the
 * restored bytes equal to the source, or with a clear error and no wrong byte in the target. Faults
 * hit chunk requests only; snapshot files are served cleanly.
 */
@Timeout(60)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class HttpFaultsTest {
  private static final int CHUNK = 4 * Fixtures.MIB;

  /** Short backoff, bounded by a window well inside the test timeout. */
  private static final RetryPolicy FAST =
      new RetryPolicy(1, Duration.ofMillis(20), Duration.ofMillis(200), Duration.ZERO)
          .withWindow(Duration.ofSeconds(15));

  private Path dir;

  private final MemoryStore source = new MemoryStore();
  private byte[] image;
  private SnapshotPath snap;

  /** Non-zero chunks: 0, 1, 3, 4, 6, 7, 9 and the tail chunk 10. */
  private Digest first;

  private MockWebServer server;
  private Served served;

  @BeforeAll
  void backup(@TempDir Path tmp) throws Exception {
    dir = tmp;
    image = Fixtures.image(10, 123_456, 42);
    snap = Fixtures.backup(source, dir, image, null);
    first = new BlobCodec(null).digest(image, 0, CHUNK);
  }

  @BeforeEach
  void start() throws IOException {
    served = new Served();
    server = new MockWebServer();
    server.setDispatcher(served);
    // an explicit port makes MockWebServer set SO_REUSEADDR, which its accepted sockets inherit:
    // the outage tests can then bind the port again while old connections linger in TIME_WAIT
    int port;
    try (java.net.ServerSocket probe =
        new java.net.ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      port = probe.getLocalPort();
    }
    server.start(InetAddress.getLoopbackAddress(), port);
  }

  @AfterEach
  void stop() throws IOException {
    server.shutdown();
  }

  /** What a fault returns for a chunk request: a response, or null to serve the chunk. */
  private interface Fault {
    MockResponse respond(Digest d, int attempt, byte[] blob);
  }

  /** Serves {@link #source} under /ds/, counting chunk requests and injected faults. */
  private final class Served extends Dispatcher {
    volatile Fault fault = (d, a, b) -> null;
    final Map<Digest, AtomicInteger> requests = new ConcurrentHashMap<>();
    final AtomicInteger chunkRequests = new AtomicInteger();
    final AtomicInteger injected = new AtomicInteger();
    final CountDownLatch firstChunk = new CountDownLatch(1);

    @Override
    public MockResponse dispatch(RecordedRequest r) {
      String path = r.getPath().substring("/ds/".length());
      if (!path.startsWith(".chunks/")) {
        byte[] f = source.file(path);
        return f == null ? new MockResponse().setResponseCode(404) : ok(f);
      }
      Digest d = Digest.parse(path.substring(path.lastIndexOf('/') + 1));
      int attempt = requests.computeIfAbsent(d, k -> new AtomicInteger()).incrementAndGet();
      chunkRequests.incrementAndGet();
      firstChunk.countDown();
      byte[] blob = source.raw(d);
      if (blob == null) {
        return new MockResponse().setResponseCode(404);
      }
      MockResponse f = fault.respond(d, attempt, blob);
      if (f != null) {
        injected.incrementAndGet();
        return f;
      }
      return ok(blob);
    }

    int requests(Digest d) {
      AtomicInteger n = requests.get(d);
      return n == null ? 0 : n.get();
    }
  }

  private static MockResponse ok(byte[] body) {
    return new MockResponse().setBody(new Buffer().write(body));
  }

  /** A fault for a share of requests, drawn from one seeded sequence. */
  private static Fault share(double p, long seed, Fault f) {
    Random r = new Random(seed);
    return (d, a, b) -> {
      boolean hit;
      synchronized (r) {
        hit = r.nextDouble() < p;
      }
      return hit ? f.respond(d, a, b) : null;
    };
  }

  private record Outcome(Restorer.Result result, PipelineStats stats, long nanos) {}

  private Outcome restore(
      String url, RetryPolicy retry, Duration readTimeout, Path target, boolean resume)
      throws IOException, InterruptedException {
    long t0 = System.nanoTime();
    Stores.Options o = Stores.Options.defaults(4).withTimeouts(Duration.ofSeconds(2), readTimeout);
    try (ChunkStore s = TestStores.open(url, o);
        FetchPipeline p = new FetchPipeline(s, 4, 2, retry)) {
      Image img = Snapshot.open(s, snap, KeyPolicy.strict(null)).openImage("a.img", p);
      Restorer.Result r =
          new Restorer(img, target, new Restorer.Options(resume, false, 8, 0, null)).run();
      return new Outcome(r, p.stats(), System.nanoTime() - t0);
    }
  }

  private Outcome restore(Path target) throws IOException, InterruptedException {
    return restore(server.url("/ds/").toString(), FAST, Duration.ofSeconds(2), target, false);
  }

  private void assertRestored(Path target, Outcome o) throws IOException {
    assertArrayEquals(image, Files.readAllBytes(target));
    assertEquals(8, o.result().fetched());
    assertFalse(Files.exists(Restorer.defaultStateFile(target)));
  }

  /** Every chunk of the target is either the source's or still a hole; {@code hole} is a hole. */
  private void assertNothingWrong(Path target, int hole) throws IOException {
    byte[] out = Files.readAllBytes(target);
    assertEquals(image.length, out.length);
    byte[] zeros = new byte[CHUNK];
    for (int off = 0, i = 0; off < image.length; off += CHUNK, i++) {
      int end = Math.min(image.length, off + CHUNK);
      byte[] got = Arrays.copyOfRange(out, off, end);
      boolean isHole = Arrays.equals(got, Arrays.copyOf(zeros, end - off));
      assertTrue(
          isHole || Arrays.equals(Arrays.copyOfRange(image, off, end), got),
          "chunk " + i + " holds wrong bytes");
      if (i == hole) {
        assertTrue(isHole, "chunk " + i + " was written although it failed");
      }
    }
  }

  /**
   * Restores while 30% of chunk requests meet {@code fault} (one seeded draw per request) and
   * checks that the image came through whole, with one retry per injected fault.
   */
  private void ridesOut(Fault fault, long seed, Duration readTimeout) throws Exception {
    served.fault = share(0.3, seed, fault);
    Path t = dir.resolve("share-" + seed + ".img");
    Outcome o = restore(server.url("/ds/").toString(), FAST, readTimeout, t, false);
    assertRestored(t, o);
    assertTrue(served.injected.get() > 0, "no fault was injected");
    assertEquals(served.injected.get(), o.stats().retries());
  }

  @Test
  void thirtyPercentOf5xxAnd429AreRetried() throws Exception {
    int[] codes = {500, 503, 429};
    AtomicInteger n = new AtomicInteger();
    ridesOut(
        (d, a, b) -> new MockResponse().setResponseCode(codes[n.getAndIncrement() % codes.length]),
        1,
        Duration.ofSeconds(2));
  }

  @Test
  void resetsMidBodyAreRetried() throws Exception {
    ridesOut(
        (d, a, b) -> ok(b).setSocketPolicy(SocketPolicy.DISCONNECT_DURING_RESPONSE_BODY),
        2,
        Duration.ofSeconds(2));
  }

  @Test
  void truncatedBodiesAreRetried() throws Exception {
    // half the body, a Content-Length promising all of it, then the connection closes
    ridesOut(
        (d, a, b) ->
            ok(Arrays.copyOf(b, b.length / 2))
                .setHeader("Content-Length", b.length)
                .setSocketPolicy(SocketPolicy.DISCONNECT_AT_END),
        3,
        Duration.ofSeconds(2));
  }

  @Test
  void stalledBodiesTimeOutAndAreRetried() throws Exception {
    // half the body, then nothing for longer than the read timeout
    ridesOut(
        (d, a, b) -> ok(b).throttleBody(b.length / 2, 2, TimeUnit.SECONDS),
        4,
        Duration.ofMillis(300));
  }

  private static MockResponse flipped(byte[] blob) {
    byte[] bad = blob.clone();
    bad[bad.length / 2] ^= 0x10;
    return ok(bad);
  }

  @Test
  void aFlippedBitIsRefetchedOnce() throws Exception {
    served.fault = (d, a, b) -> d.equals(first) && a == 1 ? flipped(b) : null;
    Path t = dir.resolve("flip-once.img");
    Outcome o = restore(t);
    assertRestored(t, o);
    assertEquals(2, served.requests(first));
  }

  @Test
  void aBitFlippedForGoodIsAnErrorNamingTheChunkAndNothingWrongIsWritten() throws Exception {
    served.fault = (d, a, b) -> d.equals(first) ? flipped(b) : null;
    Path t = dir.resolve("flip-always.img");
    IOException e = assertThrows(IOException.class, () -> restore(t));
    assertTrue(
        e.getMessage().contains(first.hex()) && e.getMessage().contains("/ds/.chunks/"),
        e.getMessage());
    assertEquals(2, served.requests(first)); // one refetch, then an error
    assertNothingWrong(t, 0);
    // the store repaired, a resume fetches only what is missing and completes
    served.fault = (d, a, b) -> null;
    int before = served.chunkRequests.get();
    Outcome o = restore(server.url("/ds/").toString(), FAST, Duration.ofSeconds(2), t, true);
    assertArrayEquals(image, Files.readAllBytes(t));
    assertEquals(o.result().fetched(), served.chunkRequests.get() - before);
    assertTrue(o.result().fetched() >= 1 && o.result().alreadyDone() >= 1, o.result().toString());
  }

  @Test
  void aMissingChunkFailsAtOnceNamingItsUrl() throws Exception {
    served.fault = (d, a, b) -> d.equals(first) ? new MockResponse().setResponseCode(404) : null;
    Path t = dir.resolve("missing.img");
    long t0 = System.nanoTime();
    IOException e = assertThrows(IOException.class, () -> restore(t));
    String url =
        server.url("/ds/.chunks/" + first.hex().substring(0, 4) + "/" + first.hex()).toString();
    assertTrue(e.getMessage().contains(url) && e.getMessage().contains("missing"), e.getMessage());
    assertEquals(1, served.requests(first)); // not retried
    assertTrue(
        System.nanoTime() - t0 < FAST.window().toNanos(), "a 404 waited for the retry window");
    assertNothingWrong(t, 0);
  }

  /**
   * Shuts the server down at the first chunk request and, if {@code downFor} is set, restarts it
   * then.
   */
  private CompletableFuture<Void> outage(Duration downFor) {
    int port = server.getPort();
    return CompletableFuture.runAsync(
        () -> {
          try {
            served.firstChunk.await();
            server.shutdown(); // connections refused from now on
            if (downFor != null) {
              Thread.sleep(downFor.toMillis());
              MockWebServer back = new MockWebServer();
              back.setDispatcher(served);
              back.start(InetAddress.getLoopbackAddress(), port);
              server = back;
            }
          } catch (IOException | InterruptedException e) {
            throw new IllegalStateException(e);
          }
        });
  }

  @Test
  void aStoreDownForAWhileIsRiddenOut() throws Exception {
    String url = server.url("/ds/").toString();
    CompletableFuture<Void> down = outage(Duration.ofSeconds(3));
    Path t = dir.resolve("outage.img");
    Outcome o = restore(url, FAST, Duration.ofSeconds(2), t, false);
    down.get(10, TimeUnit.SECONDS);
    assertRestored(t, o);
    assertTrue(o.stats().retries() > 0, o.stats().toString());
    assertTrue(
        o.nanos() > Duration.ofSeconds(3).toNanos(),
        "the outage did not happen during the restore");
  }

  @Test
  void aStoreThatStaysDownEndsInAClearErrorInBoundedTime() throws Exception {
    String url = server.url("/ds/").toString();
    String hostPort = server.getHostName() + ":" + server.getPort();
    // chunks after the first are slow, so that none is served before the store goes down
    served.fault =
        (d, a, b) ->
            served.chunkRequests.get() > 1 ? ok(b).setBodyDelay(3, TimeUnit.SECONDS) : null;
    CompletableFuture<Void> down = outage(null);
    Path t = dir.resolve("down.img");
    RetryPolicy shortWindow = FAST.withWindow(Duration.ofMillis(1500));
    long t0 = System.nanoTime();
    IOException e =
        assertThrows(
            IOException.class, () -> restore(url, shortWindow, Duration.ofSeconds(2), t, false));
    long took = System.nanoTime() - t0;
    down.get(10, TimeUnit.SECONDS);
    assertTrue(
        e.getMessage().contains("cannot connect to " + hostPort)
            && e.getMessage().contains("gave up after"),
        e.getMessage());
    assertTrue(took < Duration.ofSeconds(10).toNanos(), "took " + took / 1_000_000 + " ms");
    assertNothingWrong(t, -1);
  }

  @Test
  void aCertificateFromAnUnknownCaIsRefusedAtOnce() throws Exception {
    try (MockWebServer tls = TlsServers.server(TlsServers.ca("unknown CA"))) {
      tls.setDispatcher(served);
      tls.start(InetAddress.getLoopbackAddress(), 0);
      Path t = dir.resolve("tls.img");
      long t0 = System.nanoTime();
      StoreException e =
          assertThrows(
              StoreException.class,
              () -> restore(tls.url("/ds/").toString(), FAST, Duration.ofSeconds(2), t, false));
      assertTrue(
          e.getMessage().contains("not signed by a trusted CA")
              && e.getMessage().contains("--ca-file"),
          e.getMessage());
      assertTrue(System.nanoTime() - t0 < FAST.window().toNanos(), "a TLS refusal was retried");
      assertFalse(Files.exists(t), "a target was created although TLS failed");
      assertEquals(0, served.chunkRequests.get());
    }
  }
}
