package dev.thaw.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.format.Digest;
import dev.thaw.testing.TestStores;
import dev.thaw.testing.TlsServers;
import java.net.InetAddress;
import java.time.Duration;
import java.util.List;
import okhttp3.Call;
import okhttp3.Connection;
import okhttp3.EventListener;
import okhttp3.HttpUrl;
import okhttp3.OkHttpClient;
import okhttp3.Protocol;
import okhttp3.mockwebserver.Dispatcher;
import okhttp3.mockwebserver.MockResponse;
import okhttp3.mockwebserver.MockWebServer;
import okhttp3.mockwebserver.RecordedRequest;
import okhttp3.mockwebserver.SocketPolicy;
import okio.Buffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class HttpStoreTest {
  private static final int MAX = 1 << 20;
  private final MockWebServer server = new MockWebServer();
  private ChunkStore store;
  private final Digest d = Digest.parse("ab".repeat(32));

  @BeforeEach
  void start() throws Exception {
    server.start(InetAddress.getLoopbackAddress(), 0);
    store =
        TestStores.open(
            server.url("/ds").toString(),
            Stores.Options.defaults(4).withTimeouts(Duration.ofSeconds(2), Duration.ofSeconds(1)));
  }

  @AfterEach
  void stop() throws Exception {
    store.close();
    server.shutdown();
  }

  @Test
  void readsChunksUnderThePrefix() throws Exception {
    server.enqueue(new MockResponse().setBody(new Buffer().write(new byte[] {1, 2, 3})));
    assertArrayEquals(new byte[] {1, 2, 3}, store.readChunk(d, MAX));
    assertEquals("/ds/.chunks/abab/" + d.hex(), server.takeRequest().getPath());
    assertTrue(store.location(d).endsWith("/ds/.chunks/abab/" + d.hex()));
  }

  @Test
  void credentialsInTheUrlBecomeAHeaderAndNeverAppearInMessages() throws Exception {
    String url =
        server.url("/ds").newBuilder().username("backup").password("s3cret").build().toString();
    try (ChunkStore s = TestStores.open(url, Stores.Options.defaults(1))) {
      server.enqueue(new MockResponse().setResponseCode(404));
      NotFoundException e = assertThrows(NotFoundException.class, () -> s.readChunk(d, MAX));
      assertFalse(e.getMessage().contains("s3cret"), e.getMessage());
      assertFalse(s.describe().contains("s3cret") || s.location(d).contains("s3cret"));
      assertEquals(
          okhttp3.Credentials.basic("backup", "s3cret"),
          server.takeRequest().getHeader("Authorization"));
    }
  }

  @Test
  void httpsWithAPrivateCaAndABearerToken() throws Exception {
    okhttp3.tls.HeldCertificate ca = TlsServers.ca("thaw test CA");
    try (MockWebServer tls = TlsServers.server(ca)) {
      tls.start(InetAddress.getLoopbackAddress(), 0);
      java.nio.file.Path caFile = java.nio.file.Files.createTempFile("thaw-ca", ".pem");
      java.nio.file.Files.writeString(caFile, ca.certificatePem());
      String url = tls.url("/ds").toString();
      try (ChunkStore s =
          TestStores.open(url, Stores.Options.defaults(2).withTls(caFile, "Bearer t0ken"))) {
        tls.enqueue(new MockResponse().setBody(new Buffer().write(new byte[] {7})));
        assertArrayEquals(new byte[] {7}, s.readChunk(d, MAX));
        assertEquals("Bearer t0ken", tls.takeRequest().getHeader("Authorization"));
        tls.enqueue(new MockResponse().setResponseCode(401));
        StoreException denied = assertThrows(StoreException.class, () -> s.readChunk(d, MAX));
        assertFalse(denied.retryable());
        assertTrue(
            denied.getMessage().contains("access denied") && !denied.getMessage().contains("t0ken"),
            denied.getMessage());
      } finally {
        java.nio.file.Files.delete(caFile);
      }
      // without the CA the server's certificate is refused, at once and for good
      try (ChunkStore s = TestStores.open(url, Stores.Options.defaults(2))) {
        StoreException e = assertThrows(StoreException.class, () -> s.readChunk(d, MAX));
        assertFalse(e.retryable());
        assertTrue(e.getMessage().contains("TLS"), e.getMessage());
      }
    }
  }

  @Test
  void classifiesFailures() {
    server.enqueue(new MockResponse().setResponseCode(404));
    NotFoundException nf = assertThrows(NotFoundException.class, () -> store.readChunk(d, MAX));
    assertTrue(
        nf.getMessage().contains(d.hex()) && nf.getMessage().contains("/ds/.chunks/"),
        nf.getMessage());
    server.enqueue(new MockResponse().setResponseCode(403));
    assertFalse(assertThrows(StoreException.class, () -> store.readChunk(d, MAX)).retryable());
    server.enqueue(new MockResponse().setResponseCode(503));
    assertTrue(assertThrows(StoreException.class, () -> store.readChunk(d, MAX)).retryable());
    server.enqueue(new MockResponse().setResponseCode(429));
    assertTrue(assertThrows(StoreException.class, () -> store.readChunk(d, MAX)).retryable());
  }

  @Test
  void aBodyLargerThanTheChunkCanBeIsRefusedBeforeItIsRead() {
    // announced by Content-Length
    server.enqueue(new MockResponse().setBody(new Buffer().write(new byte[MAX + 1])));
    StoreException big = assertThrows(StoreException.class, () -> store.readChunk(d, MAX));
    assertFalse(big.retryable());
    assertTrue(big.getMessage().contains("announces " + (MAX + 1) + " bytes"), big.getMessage());
    // without a length (chunked): read no further than one byte past the bound
    server.enqueue(
        new MockResponse().setChunkedBody(new Buffer().write(new byte[3 * MAX]), 64 * 1024));
    StoreException endless = assertThrows(StoreException.class, () -> store.readChunk(d, MAX));
    assertFalse(endless.retryable());
    assertTrue(
        endless.getMessage().contains("exceeds the " + MAX + " bytes"), endless.getMessage());
    // a body within the bound, chunked, still reads
    server.enqueue(new MockResponse().setChunkedBody(new Buffer().write(new byte[MAX]), 64 * 1024));
    assertDoesNotThrow(() -> store.readChunk(d, MAX));
  }

  @Test
  void aWebPageWhereAChunkBelongsIsNamedAsSuch() {
    server.enqueue(
        new MockResponse()
            .setHeader("Content-Type", "text/html; charset=utf-8")
            .setBody("<html><body>Welcome to nginx!</body></html>"));
    StoreException e = assertThrows(StoreException.class, () -> store.readChunk(d, MAX));
    assertFalse(e.retryable());
    assertTrue(
        e.getMessage().contains("web page (text/html") && e.getMessage().contains(d.hex()),
        e.getMessage());
  }

  @Test
  void truncatedAndStalledBodiesAreRetryable() {
    server.enqueue(
        new MockResponse()
            .setBody(new Buffer().write(new byte[1000]))
            .setSocketPolicy(SocketPolicy.DISCONNECT_DURING_RESPONSE_BODY));
    assertTrue(assertThrows(StoreException.class, () -> store.readChunk(d, MAX)).retryable());
    server.enqueue(
        new MockResponse()
            .setBody(new Buffer().write(new byte[1000]))
            .throttleBody(10, 5, java.util.concurrent.TimeUnit.SECONDS));
    assertTrue(assertThrows(StoreException.class, () -> store.readChunk(d, MAX)).retryable());
  }

  @Test
  void aBodyTricklingInFasterThanTheReadTimeoutEndsAtTheCallTimeout() throws Exception {
    // every read gets bytes within the 200 ms read timeout, the whole body would take 6 s
    server.enqueue(
        new MockResponse()
            .setBody(new Buffer().write(new byte[60 * 1024]))
            .throttleBody(1024, 100, java.util.concurrent.TimeUnit.MILLISECONDS));
    try (ChunkStore s =
        TestStores.open(
            server.url("/ds").toString(),
            Stores.Options.defaults(1)
                .withTimeouts(Duration.ofSeconds(1), Duration.ofMillis(200)))) {
      long t0 = System.nanoTime();
      assertTrue(assertThrows(StoreException.class, () -> s.readChunk(d, MAX)).retryable());
      long ms = (System.nanoTime() - t0) / 1_000_000;
      assertTrue(
          ms >= 1_900 && ms < 5_000, "took " + ms + " ms; the call timeout is 10 read timeouts");
    }
  }

  @Test
  void aPlainHttpStoreSetsUpNoTlsAndARedirectToHttpsIsFollowedWithIt() throws Exception {
    Stores.Options o = Stores.Options.defaults(4);
    OkHttpClient plain = Stores.plainClient(o);
    java.util.concurrent.atomic.AtomicInteger tlsMade =
        new java.util.concurrent.atomic.AtomicInteger();
    HttpExchange http =
        new HttpExchange(
            plain,
            () -> {
              tlsMade.incrementAndGet();
              return Stores.tlsClient(plain, o);
            },
            null);
    String auth = okhttp3.Credentials.basic("backup", "s3cret");
    try (ChunkStore s = new HttpStore(server.url("/ds"), http, auth, ChunkLayout.DATASTORE)) {
      server.enqueue(new MockResponse().setBody(new Buffer().write(new byte[] {7})));
      assertArrayEquals(new byte[] {7}, s.readChunk(d, MAX));
      assertEquals(0, tlsMade.get(), "TLS set up for a plain http:// store");
      server.takeRequest();

      // the server moved to https (on another host name): followed once, through TLS, without
      // the credentials meant for the old host
      okhttp3.tls.HeldCertificate ca = TlsServers.ca("thaw test CA");
      try (MockWebServer tls = TlsServers.server(ca)) {
        tls.start(InetAddress.getLoopbackAddress(), 0);
        String other = "localhost".equals(server.getHostName()) ? "127.0.0.1" : "localhost";
        HttpUrl moved = tls.url("/new/ds/.chunks/abab/" + d.hex()).newBuilder().host(other).build();
        server.enqueue(
            new MockResponse().setResponseCode(301).setHeader("Location", moved.toString()));
        tls.enqueue(new MockResponse().setBody(new Buffer().write(new byte[] {8})));
        java.nio.file.Path caFile = java.nio.file.Files.createTempFile("thaw-ca", ".pem");
        try {
          java.nio.file.Files.writeString(caFile, ca.certificatePem());
          Stores.Options trusting = o.withTls(caFile, null);
          HttpExchange viaTls =
              new HttpExchange(plain, () -> Stores.tlsClient(plain, trusting), null);
          try (ChunkStore s2 =
              new HttpStore(server.url("/ds"), viaTls, auth, ChunkLayout.DATASTORE)) {
            assertArrayEquals(new byte[] {8}, s2.readChunk(d, MAX));
          }
        } finally {
          java.nio.file.Files.delete(caFile);
        }
        assertEquals(auth, server.takeRequest().getHeader("Authorization"));
        RecordedRequest there = tls.takeRequest();
        assertEquals("/new/ds/.chunks/abab/" + d.hex(), there.getPath());
        assertEquals(null, there.getHeader("Authorization"), "credentials sent to another host");
      }
    }
  }

  @Test
  void negotiatesHttp2OverTlsWhenTheServerOffersIt() throws Exception {
    okhttp3.tls.HeldCertificate ca = TlsServers.ca("thaw test CA");
    java.nio.file.Path caFile = java.nio.file.Files.createTempFile("thaw-ca", ".pem");
    try (MockWebServer tls = TlsServers.server(ca)) {
      tls.setProtocols(List.of(Protocol.HTTP_2, Protocol.HTTP_1_1));
      tls.start(InetAddress.getLoopbackAddress(), 0);
      java.nio.file.Files.writeString(caFile, ca.certificatePem());
      List<Protocol> used = new java.util.concurrent.CopyOnWriteArrayList<>();
      // the client thaw builds, with a listener that records each connection's protocol
      OkHttpClient client =
          Stores.httpClient(Stores.Options.defaults(4).withTls(caFile, null))
              .newBuilder()
              .eventListener(
                  new EventListener() {
                    @Override
                    public void connectionAcquired(Call call, Connection connection) {
                      used.add(connection.protocol());
                    }
                  })
              .build();
      try (ChunkStore s =
          new HttpStore(
              tls.url("/ds"), new HttpExchange(client, null), null, ChunkLayout.DATASTORE)) {
        for (int i = 0; i < 3; i++) {
          tls.enqueue(new MockResponse().setBody(new Buffer().write(new byte[] {(byte) i})));
          assertArrayEquals(new byte[] {(byte) i}, s.readChunk(d, MAX));
        }
      }
      assertEquals(List.of(Protocol.HTTP_2, Protocol.HTTP_2, Protocol.HTTP_2), used);
    } finally {
      java.nio.file.Files.delete(caFile);
    }
  }

  @Test
  void listsFinishedSnapshotsFromJsonAutoindex() throws Exception {
    server.setDispatcher(
        new Dispatcher() {
          @Override
          public MockResponse dispatch(RecordedRequest r) {
            return switch (r.getPath()) {
              case "/ds/" ->
                  new MockResponse()
                      .setBody(
                          "[{\"name\":\".chunks\",\"type\":\"directory\"},"
                              + "{\"name\":\"vm\",\"type\":\"directory\"},{\"name\":\"x.txt\",\"type\":\"file\"}]");
              case "/ds/vm/" ->
                  new MockResponse()
                      .setBody(String.format("[{\"name\":\"%s\",\"type\":\"directory\"}]", "100"));
              case "/ds/vm/100/" ->
                  new MockResponse()
                      .setBody(
                          "[{\"name\":\"2026-11-22T03:04:05Z\",\"type\":\"directory\"},"
                              + "{\"name\":\"2026-11-23T03:04:05Z\",\"type\":\"directory\"},"
                              + "{\"name\":\"owner\",\"type\":\"file\"}]");
              // finished: its manifest is there
              case "/ds/vm/100/2026-11-22T03:04:05Z/" ->
                  new MockResponse()
                      .setBody(
                          "[{\"name\":\"index.json.blob\",\"type\":\"file\"},{\"name\":\"a.img.fidx\",\"type\":\"file\"}]");
              // a backup in progress or aborted: no manifest
              case "/ds/vm/100/2026-11-23T03:04:05Z/" ->
                  new MockResponse().setBody("[{\"name\":\"a.img.fidx\",\"type\":\"file\"}]");
              default -> new MockResponse().setResponseCode(404);
            };
          }
        });
    assertEquals(List.of(SnapshotPath.parse("vm/100/2026-11-22T03:04:05Z")), store.listSnapshots());
  }

  @Test
  void htmlIndexGetsAnExplanation() {
    server.enqueue(new MockResponse().setBody("<html><body>Index of /</body></html>"));
    StoreException e = assertThrows(StoreException.class, () -> store.listSnapshots());
    assertTrue(e.getMessage().contains("autoindex_format json"), e.getMessage());
  }
}
