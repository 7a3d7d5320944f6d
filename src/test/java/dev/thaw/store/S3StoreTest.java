package dev.thaw.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.format.Digest;
import java.net.InetAddress;
import java.nio.file.FileAlreadyExistsException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import okhttp3.mockwebserver.MockResponse;
import okhttp3.mockwebserver.MockWebServer;
import okhttp3.mockwebserver.RecordedRequest;
import okio.Buffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import software.amazon.awssdk.identity.spi.AwsCredentialsIdentity;

/**
 * The S3 store's requests and answers against a scripted server. The signatures themselves are
 * checked by a real S3 server (s3proxy) in tests/e2e/store-s3.sh.
 */
@Timeout(60)
class S3StoreTest {
  private static final int MAX = 1 << 20;
  private static final String SECRET = "wJalrXUtnFEMI-example-secret";
  private final MockWebServer server = new MockWebServer();
  private final Digest d = Digest.parse("ab".repeat(32));
  private final SnapshotPath snap = SnapshotPath.parse("vm/100/2025-07-14T14:20:02Z");
  private S3Store store;

  @BeforeEach
  void start() throws Exception {
    server.start(InetAddress.getLoopbackAddress(), 0);
    Stores.Options o =
        Stores.Options.defaults(4).withTimeouts(Duration.ofSeconds(2), Duration.ofSeconds(2));
    store =
        new S3Store(
            "backups",
            "pbs/ds1",
            new S3Store.Endpoint(server.url("/"), "eu-west-1", true),
            AwsCredentialsIdentity.create("AKIDEXAMPLE", SECRET),
            new HttpExchange(Stores.httpClient(o), null));
  }

  @AfterEach
  void stop() throws Exception {
    store.close();
    server.shutdown();
  }

  private static MockResponse error(int status, String code) {
    return new MockResponse()
        .setResponseCode(status)
        .setBody(
            "<?xml version=\"1.0\"?><Error><Code>" + code + "</Code><Message>m</Message></Error>");
  }

  @Test
  void chunksAndSnapshotFilesUseThePbs4LayoutAndAreSigned() throws Exception {
    server.enqueue(new MockResponse().setBody(new Buffer().write(new byte[] {7, 8})));
    assertArrayEquals(new byte[] {7, 8}, store.readChunk(d, MAX));
    RecordedRequest r = server.takeRequest();
    assertEquals("/backups/pbs/ds1/.chunks/abab/" + d.hex(), r.getPath());
    String auth = r.getHeader("Authorization");
    assertNotNull(auth);
    assertTrue(auth.startsWith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), auth);
    assertTrue(auth.contains("/eu-west-1/s3/aws4_request"), auth);
    assertNotNull(r.getHeader("x-amz-date"));
    assertNotNull(r.getHeader("x-amz-content-sha256"));
    assertFalse(r.getHeaders().toString().contains(SECRET));
    assertEquals("s3://backups/pbs/ds1/.chunks/abab/" + d.hex(), store.location(d));

    server.enqueue(new MockResponse().setBody("manifest"));
    store.readFile(snap, "index.json.blob");
    // ':' in the snapshot time is escaped as SigV4's canonical URI has it
    assertEquals(
        "/backups/pbs/ds1/.cnt/vm/100/2025-07-14T14%3A20%3A02Z/index.json.blob",
        server.takeRequest().getPath());
  }

  @Test
  void listingPagesAndShowsOnlySnapshotsWithAManifest() throws Exception {
    String p = "pbs/ds1/.cnt/";
    server.enqueue(
        new MockResponse()
            .setBody(
                "<ListBucketResult><IsTruncated>true</IsTruncated>"
                    + "<Contents><Key>"
                    + p
                    + "vm/100/2025-07-14T14:20:02Z/drive-scsi0.img.fidx</Key></Contents>"
                    + "<Contents><Key>"
                    + p
                    + "vm/100/2025-07-14T14:20:02Z/index.json.blob</Key></Contents>"
                    + "<Contents><Key>"
                    + p
                    + "vm/100/2025-07-15T14:20:02Z/drive-scsi0.img.fidx</Key></Contents>"
                    + "<NextContinuationToken>tok/1+2=</NextContinuationToken></ListBucketResult>"));
    server.enqueue(
        new MockResponse()
            .setBody(
                "<ListBucketResult><IsTruncated>false</IsTruncated>"
                    + "<Contents><Key>"
                    + p
                    + "ns/lab/ct/7/2025-01-01T00:00:00Z/index.json.blob</Key></Contents>"
                    + "<Contents><Key>"
                    + p
                    + "junk/index.json.blob</Key></Contents>"
                    + "</ListBucketResult>"));
    List<SnapshotPath> snaps = store.listSnapshots();
    assertEquals(List.of(SnapshotPath.parse("ns/lab/ct/7/2025-01-01T00:00:00Z"), snap), snaps);
    RecordedRequest first = server.takeRequest();
    assertEquals("2", first.getRequestUrl().queryParameter("list-type"));
    assertEquals(p, first.getRequestUrl().queryParameter("prefix"));
    assertEquals("/backups/", first.getRequestUrl().encodedPath());
    assertEquals(
        "tok/1+2=", server.takeRequest().getRequestUrl().queryParameter("continuation-token"));
  }

  @Test
  void errorsSayWhatToDoAndWhetherToRetry() {
    server.enqueue(error(404, "NoSuchKey"));
    NotFoundException nf = assertThrows(NotFoundException.class, () -> store.readChunk(d, MAX));
    assertTrue(
        nf.getMessage().contains("s3://backups/pbs/ds1/.chunks/abab/" + d.hex()), nf.getMessage());

    server.enqueue(error(503, "SlowDown"));
    StoreException slow = assertThrows(StoreException.class, () -> store.readChunk(d, MAX));
    assertTrue(slow.retryable());

    server.enqueue(error(403, "SignatureDoesNotMatch"));
    StoreException denied = assertThrows(StoreException.class, () -> store.readChunk(d, MAX));
    assertFalse(denied.retryable());
    assertTrue(denied.getMessage().contains("AWS_SECRET_ACCESS_KEY"), denied.getMessage());
    assertFalse(denied.getMessage().contains(SECRET));

    server.enqueue(error(404, "NoSuchBucket"));
    NotFoundException nb = assertThrows(NotFoundException.class, () -> store.listSnapshots());
    assertTrue(nb.getMessage().contains("bucket 'backups' does not exist"), nb.getMessage());

    server.enqueue(error(301, "PermanentRedirect").addHeader("x-amz-bucket-region", "us-west-2"));
    StoreException region = assertThrows(StoreException.class, () -> store.readChunk(d, MAX));
    assertTrue(region.getMessage().contains("--s3-region us-west-2"), region.getMessage());
  }

  @Test
  void backupsUploadOnlyMissingChunksAndTheManifestLast() throws Exception {
    server.enqueue(new MockResponse().setResponseCode(200));
    assertTrue(store.hasChunk(d));
    server.enqueue(new MockResponse().setResponseCode(404));
    assertFalse(store.hasChunk(d));
    assertEquals("HEAD", server.takeRequest().getMethod());
    server.takeRequest();

    server.enqueue(new MockResponse().setResponseCode(404)); // HEAD manifest: no such snapshot yet
    for (int i = 0; i < 2; i++) {
      server.enqueue(new MockResponse().setResponseCode(200));
    }
    try (WritableStore.SnapshotWriter w = store.createSnapshot(snap)) {
      w.writeFile("index.json.blob", new byte[] {1});
      w.writeFile("drive-scsi0.img.fidx", new byte[] {2, 3});
      w.commit();
    }
    List<String> seen = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      RecordedRequest r = server.takeRequest();
      seen.add(r.getMethod() + " " + r.getPath().substring(r.getPath().lastIndexOf('/') + 1));
      if (r.getMethod().equals("PUT")) {
        // the payload is signed: its SHA-256 is in the signed header
        assertEquals(64, r.getHeader("x-amz-content-sha256").length());
      }
    }
    assertEquals(
        List.of("HEAD index.json.blob", "PUT drive-scsi0.img.fidx", "PUT index.json.blob"), seen);

    server.enqueue(new MockResponse().setResponseCode(200)); // the manifest exists
    try (WritableStore.SnapshotWriter w = store.createSnapshot(snap)) {
      w.writeFile("index.json.blob", new byte[] {1});
      assertThrows(FileAlreadyExistsException.class, w::commit);
    }
  }

  @Test
  void aDatastoreThatAPbsUsesIsRefusedForWriting() throws Exception {
    server.enqueue(new MockResponse().setBody("{\"hostname\":\"pbs-west\"}"));
    StoreException e = assertThrows(StoreException.class, () -> store.refuseIfInUse());
    assertFalse(e.retryable());
    assertTrue(
        e.getMessage().contains("pbs-west")
            && e.getMessage().contains("s3://backups/pbs/ds1/.in-use")
            && e.getMessage().contains("garbage collection")
            && e.getMessage().contains("proxmox-backup-client"),
        e.getMessage());
    assertEquals("/backups/pbs/ds1/.in-use", server.takeRequest().getPath());

    server.enqueue(error(404, "NoSuchKey")); // no PBS uses it
    store.refuseIfInUse();
    server.takeRequest();
    server.enqueue(error(404, "NoSuchBucket"));
    NotFoundException nb = assertThrows(NotFoundException.class, () -> store.refuseIfInUse());
    assertTrue(nb.getMessage().contains("bucket 'backups' does not exist"), nb.getMessage());
  }

  @Test
  void aNewGroupGetsAnOwnerObjectAndAnExistingOneIsKept() throws Exception {
    server.enqueue(new MockResponse().setResponseCode(404)); // HEAD owner
    server.enqueue(new MockResponse().setResponseCode(200)); // PUT owner
    assertTrue(store.ensureGroupOwner(snap, "root@pam"));
    RecordedRequest head = server.takeRequest();
    assertEquals(
        "HEAD /backups/pbs/ds1/.cnt/vm/100/owner", head.getMethod() + " " + head.getPath());
    RecordedRequest put = server.takeRequest();
    assertEquals("PUT /backups/pbs/ds1/.cnt/vm/100/owner", put.getMethod() + " " + put.getPath());
    assertEquals("root@pam\n", put.getBody().readUtf8());

    server.enqueue(new MockResponse().setResponseCode(200)); // HEAD owner: there
    assertFalse(store.ensureGroupOwner(snap, "other@pbs"));
    assertEquals("HEAD", server.takeRequest().getMethod());
    assertEquals(0, server.getRequestCount() - 3, "no PUT over an existing owner");
  }

  @Test
  void keysAreEncodedStrictly() {
    assertEquals("2025-07-14T14%3A20%3A02Z", S3Store.encode("2025-07-14T14:20:02Z"));
    assertEquals("a.b_c-d~e", S3Store.encode("a.b_c-d~e"));
    assertEquals("sp%20%2B%2F%C3%A9", S3Store.encode("sp +/\u00e9"));
  }
}
