package dev.thaw.store;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.thaw.buffer.BufferPool;
import dev.thaw.format.Digest;
import java.io.IOException;
import java.net.URLEncoder;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import okio.Buffer;
import okio.BufferedSource;
import okio.Okio;
import okio.Throttler;

/**
 * A datastore on a Proxmox Backup Server, read over its reader protocol: one reader session (an
 * HTTP/2 connection after an HTTP/1.1 upgrade) per snapshot, opened on the first file or chunk of
 * that snapshot, chunks as concurrent streams on it; snapshots listed through the API ({@code
 * /api2/json/admin/datastore/STORE/snapshots}). Snapshot names are relative to the namespace of
 * {@link PbsOptions#namespace()}; a name's own {@code ns/X/} parts go below it. Read-only: nothing
 * is ever written to the server.
 *
 * <p>PBS lets a session read a chunk only after the session downloaded an index that holds it. The
 * store remembers which index of which snapshot holds each chunk (8 bytes per chunk), and before a
 * chunk is read on a session that has not downloaded that index (a new session after a dropped
 * connection), the index is downloaded again on it. Sessions idle for a minute are closed, so that
 * the server's lock on the snapshot is not held by a mount nobody reads; the next read opens a new
 * one. Single attempts: a dropped connection or timeout is a retryable {@link StoreException}, a
 * refused token or missing privilege is not. Thread-safe.
 */
final class PbsStore implements ChunkStore {
  private static final ObjectMapper JSON = new ObjectMapper();
  static final String MANIFEST = "index.json.blob";
  private static final long IDLE_NANOS = TimeUnit.SECONDS.toNanos(60);
  private static final byte[] FIXED_MAGIC = {
    (byte) 0x2f,
    (byte) 0x7f,
    (byte) 0x41,
    (byte) 0xed,
    (byte) 0x91,
    (byte) 0xfd,
    (byte) 0x0f,
    (byte) 0xcd
  };
  private static final byte[] DYNAMIC_MAGIC = {
    (byte) 0x1c,
    (byte) 0x91,
    (byte) 0x4e,
    (byte) 0xa5,
    (byte) 0x19,
    (byte) 0xba,
    (byte) 0xb3,
    (byte) 0xcd
  };
  private static final int INDEX_HEADER = 4096;

  private final PbsRepository repo;
  private final List<String> namespace;
  private final PbsClient client;
  private final Throttler throttler;
  private final ConcurrentHashMap<SnapshotPath, Reader> readers = new ConcurrentHashMap<>();

  /** The chunks of every index downloaded so far, and where they came from. */
  private final List<Owned> owners = new CopyOnWriteArrayList<>();

  private final ScheduledExecutorService janitor;

  /** The sorted 8-byte digest prefixes of one index file of one snapshot. */
  private record Owned(Reader reader, String index, long[] prefixes) {}

  /**
   * Opens the store of {@code repo} with the options' token secret, fingerprint, namespace, CA file
   * and timeouts.
   *
   * @param throttler the process-wide rate limit, or null
   */
  static PbsStore open(PbsRepository repo, Stores.Options o, Throttler throttler) {
    if (!repo.isToken()) {
      throw new IllegalArgumentException(
          "thaw signs in to a Proxmox Backup Server with an API token:"
              + " name it in the repository as USER@REALM!TOKEN@HOST:DATASTORE, not "
              + repo.authId());
    }
    if (!StandardCharsets.US_ASCII.newEncoder().canEncode(repo.authId())) {
      // PBS reads the Authorization header as visible ASCII and refuses anything else (401)
      throw new IllegalArgumentException(
          "the API token id "
              + repo.authId()
              + " is not ASCII: it cannot go in the header a Proxmox Backup Server reads a token"
              + " from");
    }
    PbsOptions options = o.pbs();
    if (options.secret() == null || options.secret().isEmpty()) {
      throw new IllegalArgumentException(
          "no secret for the API token "
              + repo.authId()
              + ": set PBS_PASSWORD (or PBS_PASSWORD_FD, PBS_PASSWORD_FILE, PBS_PASSWORD_CMD,"
              + " or the systemd credential proxmox-backup-client.password)");
    }
    PbsClient client =
        new PbsClient(
            repo,
            options.secret(),
            o.caFile(),
            options.fingerprint(),
            o.connectTimeout(),
            o.readTimeout(),
            o.readTimeout().multipliedBy(Stores.CALL_TIMEOUT_FACTOR));
    return new PbsStore(repo, options, client, throttler);
  }

  PbsStore(PbsRepository repo, PbsOptions options, PbsClient client, Throttler throttler) {
    this.repo = repo;
    this.namespace = PbsRepository.parseNamespace(options.namespace());
    this.client = client;
    this.throttler = throttler;
    this.janitor =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "thaw-pbs-idle");
              t.setDaemon(true);
              return t;
            });
    // the janitor is shut down on close, which ends this task; closeIdle never throws
    var unused = janitor.scheduleWithFixedDelay(this::closeIdle, 15, 15, TimeUnit.SECONDS);
  }

  // ---- snapshot files and chunks ----

  @Override
  public byte[] readFile(SnapshotPath snapshot, String file) throws IOException {
    SnapshotPath.checkFileName(file);
    return reader(snapshot).download(file);
  }

  @Override
  public byte[] readChunk(Digest digest, int maxBytes) throws IOException {
    return readChunk(digest, maxBytes, null).exactArray();
  }

  @Override
  public dev.thaw.buffer.Buffer readChunk(Digest digest, int maxBytes, BufferPool pool)
      throws IOException {
    long prefix = prefix(digest);
    for (Owned o : owners) {
      if (Arrays.binarySearch(o.prefixes, prefix) >= 0) {
        return o.reader.chunk(digest, o.index, maxBytes, pool);
      }
    }
    throw new StoreException(
        "chunk "
            + digest.hex()
            + ": no index read from "
            + describe()
            + " holds it, and PBS serves a chunk only to a reader that downloaded its index",
        false);
  }

  private Reader reader(SnapshotPath snapshot) {
    return readers.computeIfAbsent(snapshot, Reader::new);
  }

  /** One snapshot's reader sessions: the current one, opened on first use and after a fault. */
  private final class Reader {
    final SnapshotPath snapshot;
    final String query;
    private ReaderSession session; // guarded by this

    Reader(SnapshotPath snapshot) {
      this.snapshot = snapshot;
      List<String> ns = PbsRepository.join(namespace, snapshot.namespace());
      StringBuilder q =
          new StringBuilder("/api2/json/reader?store=")
              .append(enc(repo.datastore()))
              .append("&backup-type=")
              .append(enc(snapshot.type()))
              .append("&backup-id=")
              .append(enc(snapshot.id()))
              .append("&backup-time=")
              .append(snapshot.time().getEpochSecond())
              .append("&debug=false");
      if (!ns.isEmpty()) {
        q.append("&ns=").append(enc(PbsRepository.namespace(ns)));
      }
      this.query = q.toString();
    }

    synchronized ReaderSession session() throws IOException {
      if (session == null || !session.isOpen()) {
        if (session != null) {
          session.close(); // a server may end a session (GOAWAY) and leave its connection open
          session = null;
        }
        try {
          session = client.openReader(query);
        } catch (PbsClient.Rejected e) {
          throw refusal(e.reply(), "reader for snapshot " + snapshot, where(snapshot, null));
        }
      }
      return session;
    }

    synchronized void closeIfIdle() {
      if (session != null) {
        session.closeIfIdle(IDLE_NANOS);
      }
    }

    synchronized void close() {
      if (session != null) {
        session.close();
        session = null;
      }
    }

    byte[] download(String file) throws IOException {
      ReaderSession s = session();
      ReaderSession.Reply r = s.get("/download?file-name=" + enc(file), (int) MAX_FILE_BYTES);
      if (r.status() != 200) {
        throw refusal(r, file, where(snapshot, file));
      }
      if (isIndex(file)) {
        register(this, file, r.body());
        s.registered.add(file);
      }
      return throttle(r.body());
    }

    dev.thaw.buffer.Buffer chunk(Digest digest, String index, int maxBytes, BufferPool pool)
        throws IOException {
      ReaderSession s = session();
      if (!s.registered.contains(index)) {
        synchronized (
            s.registration) { // a new session: download the index again to register its chunks
          if (!s.registered.contains(index)) {
            ReaderSession.Reply r =
                s.get("/download?file-name=" + enc(index), (int) MAX_FILE_BYTES);
            if (r.status() != 200) {
              throw refusal(r, index, where(snapshot, index));
            }
            s.registered.add(index);
          }
        }
      }
      ReaderSession.Reply r = s.get("/chunk?digest=" + digest.hex(), maxBytes, pool);
      if (r.status() != 200) {
        throw refusal(r, "chunk " + digest.hex(), location(digest));
      }
      dev.thaw.buffer.Buffer b =
          r.buffer() != null ? r.buffer() : dev.thaw.buffer.Buffer.wrap(r.body());
      try {
        pace(b.length());
      } catch (IOException | RuntimeException e) {
        b.release();
        throw e;
      }
      return b;
    }
  }

  private static boolean isIndex(String file) {
    return file.endsWith(".fidx") || file.endsWith(".didx");
  }

  /**
   * Records the chunks of an index (once per index file of a snapshot).
   *
   * @throws StoreException if it is not an index with PBS's 4096-byte header, the only layout thaw
   *     reads (its chunks could not be found otherwise)
   */
  private void register(Reader reader, String file, byte[] index) throws StoreException {
    for (Owned o : owners) {
      if (o.reader == reader && o.index.equals(file)) {
        return;
      }
    }
    long[] prefixes = prefixes(file, index);
    if (prefixes == null) {
      throw new StoreException(
          file
              + " ("
              + index.length
              + " bytes) is not a "
              + (file.endsWith(".fidx") ? "fixed" : "dynamic")
              + " index with a 4096-byte header: "
              + where(reader.snapshot, file),
          false);
    }
    synchronized (owners) {
      for (Owned o : owners) {
        if (o.reader == reader && o.index.equals(file)) {
          return;
        }
      }
      owners.add(new Owned(reader, file, prefixes));
    }
  }

  /** The sorted digest prefixes of a fixed or dynamic index, or null if it is not one. */
  static long[] prefixes(String file, byte[] index) {
    boolean fixed = file.endsWith(".fidx");
    int entry = fixed ? 32 : 40;
    int offset = fixed ? 0 : 8;
    if (index.length < INDEX_HEADER
        || (index.length - INDEX_HEADER) % entry != 0
        || !Arrays.equals(index, 0, 8, fixed ? FIXED_MAGIC : DYNAMIC_MAGIC, 0, 8)) {
      return null;
    }
    ByteBuffer b = ByteBuffer.wrap(index).order(ByteOrder.BIG_ENDIAN);
    int n = (index.length - INDEX_HEADER) / entry;
    long[] out = new long[n];
    for (int i = 0; i < n; i++) {
      out[i] = b.getLong(INDEX_HEADER + i * entry + offset);
    }
    Arrays.sort(out);
    return out;
  }

  private static long prefix(Digest d) {
    byte[] b = new byte[Digest.LENGTH];
    d.copyTo(b, 0);
    return ByteBuffer.wrap(b).order(ByteOrder.BIG_ENDIAN).getLong();
  }

  private byte[] throttle(byte[] body) throws IOException {
    pace(body.length);
    return body;
  }

  /** Paces the caller to the rate limit for {@code n} bytes read (the bodies are read already). */
  private void pace(long n) throws IOException {
    if (throttler == null || n == 0) {
      return;
    }
    try (BufferedSource s = Okio.buffer(throttler.source(new Zeros(n)))) {
      s.skip(n);
    }
  }

  /** {@code n} zero bytes, 8 KiB at a time: what {@link #pace} runs through the throttler. */
  private static final class Zeros implements okio.Source {
    private static final byte[] BLOCK = new byte[8192]; // never written
    private long left;

    Zeros(long n) {
      left = n;
    }

    @Override
    public long read(Buffer sink, long byteCount) {
      if (left == 0) {
        return -1;
      }
      int k = (int) Math.min(Math.min(byteCount, left), BLOCK.length);
      sink.write(BLOCK, 0, k);
      left -= k;
      return k;
    }

    @Override
    public okio.Timeout timeout() {
      return okio.Timeout.NONE;
    }

    @Override
    public void close() {}
  }

  // ---- listing ----

  /**
   * The complete snapshots (those with a manifest) of the store's namespace, as PBS lists them
   * (groups without an owner are not listed; sub-namespaces are not walked, as with {@code
   * proxmox-backup-client snapshot list --ns}).
   */
  @Override
  public List<SnapshotPath> listSnapshots() throws IOException {
    String path =
        "/api2/json/admin/datastore/"
            + enc(repo.datastore())
            + "/snapshots"
            + (namespace.isEmpty() ? "" : "?ns=" + enc(PbsRepository.namespace(namespace)));
    List<SnapshotPath> out = new ArrayList<>();
    try (PbsClient.ApiAnswer a = client.get(path)) {
      if (a.status() != 200) {
        throw refusal(a.reply(64 << 10), "snapshot listing", describe());
      }
      if (!readListing(a, out)) {
        throw new StoreException(
            "snapshot listing of "
                + describe()
                + ": the server's answer is not"
                + " a PBS snapshot list (no \"data\" array)",
            false);
      }
    }
    Collections.sort(out);
    return out;
  }

  /**
   * Reads {@code {"data":[...]}} one snapshot at a time, as it arrives, into {@code out}: the
   * complete ones (with a manifest) thaw can name. False if the body is not such an object.
   */
  private static boolean readListing(java.io.InputStream body, List<SnapshotPath> out)
      throws IOException {
    boolean sawData = false;
    try (JsonParser p = JSON.createParser(body)) {
      if (p.nextToken() != JsonToken.START_OBJECT) {
        return false;
      }
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        String field = p.currentName();
        JsonToken value = p.nextToken();
        if (!"data".equals(field) || value != JsonToken.START_ARRAY) {
          p.skipChildren();
          continue;
        }
        sawData = true;
        while (p.nextToken() != JsonToken.END_ARRAY) {
          JsonNode snapshot = p.readValueAsTree();
          SnapshotPath sp = complete(snapshot);
          if (sp != null) {
            out.add(sp);
          }
        }
      }
    } catch (com.fasterxml.jackson.core.JacksonException e) {
      return false; // not JSON; a fault of the connection is an IOException of another kind
    }
    return sawData;
  }

  /** A listed snapshot's name, or null for one without a manifest or one thaw cannot name. */
  private static SnapshotPath complete(JsonNode s) {
    boolean complete = false;
    for (JsonNode f : s.path("files")) {
      String name = f.isTextual() ? f.asText() : f.path("filename").asText();
      complete |= MANIFEST.equals(name);
    }
    JsonNode time = s.path("backup-time");
    if (!complete || !time.canConvertToLong()) {
      return null; // a backup in progress or aborted: no manifest, nothing to read
    }
    try {
      SnapshotPath p =
          new SnapshotPath(
              List.of(),
              s.path("backup-type").asText(),
              s.path("backup-id").asText(),
              Instant.ofEpochSecond(time.asLong()));
      return SnapshotPath.parse(p.toString()); // validated like any snapshot name
    } catch (IllegalArgumentException | java.time.DateTimeException e) {
      return null; // a group thaw cannot name
    }
  }

  // ---- errors ----

  /**
   * What a refused request means. PBS answers most refusals with 400 and a plain-text message (with
   * or without a JSON content type); the message tells missing things from refusals.
   */
  private StoreException refusal(ReaderSession.Reply r, String what, String where) {
    int code = r.status();
    String text = r.text();
    String detail = "HTTP " + code + (text.isEmpty() ? "" : " " + text);
    String lower = text.toLowerCase(Locale.ROOT);
    if (code == 401 && what.startsWith("chunk ")) {
      return new StoreException(
          what
              + ": the server refused it ("
              + detail
              + "); it serves a chunk"
              + " only to a reader session that downloaded an index holding it: "
              + where,
          false);
    }
    if (code == 401) {
      return new StoreException(
          what
              + ": "
              + repo.host()
              + " refused the API token "
              + repo.authId()
              + " ("
              + detail
              + "): check the token's secret (PBS_PASSWORD or where it came from) and that"
              + " the token exists, is enabled and has not expired",
          false);
    }
    if (code == 403
        || (code == 400
            && (lower.contains("no permissions")
                || lower.contains("permission check failed")
                || lower.contains("owner check failed")))) {
      return new StoreException(
          what
              + ": permission denied for "
              + repo.authId()
              + " on "
              + where
              + " ("
              + detail
              + "): give the token the DatastoreReader role on /datastore/"
              + repo.datastore()
              + (namespace.isEmpty() ? "" : "/" + PbsRepository.namespace(namespace))
              + " (listing needs Datastore.Audit)",
          false);
    }
    if (code == 400 && lower.contains("no such datastore")) {
      // not a missing snapshot: nothing of this store can be read
      return new StoreException(
          "datastore '"
              + repo.datastore()
              + "' does not exist on "
              + client.peer()
              + " ("
              + detail
              + ")",
          false);
    }
    if (code == 404
        || (code == 400
            && (lower.contains("does not exist")
                || lower.contains("no such")
                || lower.contains("not found")))) {
      return new NotFoundException(
          what + " not found on " + client.peer() + " (" + detail + "): " + where);
    }
    return new StoreException(
        what + ": " + detail + " from " + where, HttpExchange.retryableStatus(code));
  }

  private String where(SnapshotPath snapshot, String file) {
    String ns = PbsRepository.namespace(PbsRepository.join(namespace, snapshot.namespace()));
    return "pbs://"
        + repo
        + (ns.isEmpty() ? "" : " ns " + ns)
        + " "
        + snapshot.type()
        + "/"
        + snapshot.id()
        + "/"
        + snapshot.timeString()
        + (file == null ? "" : "/" + file);
  }

  private static String enc(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8);
  }

  @Override
  public String location(Digest digest) {
    return "pbs://" + repo + " chunk " + digest.hex();
  }

  @Override
  public String location(SnapshotPath snapshot, String file) {
    return where(snapshot, file);
  }

  @Override
  public String describe() {
    return "pbs://"
        + repo
        + (namespace.isEmpty() ? "" : " ns " + PbsRepository.namespace(namespace));
  }

  private void closeIdle() {
    for (Reader r : readers.values()) {
      try {
        r.closeIfIdle();
      } catch (RuntimeException e) {
        // a session that cannot be closed now is tried again in 15 s; the task must not die
      }
    }
  }

  @Override
  public void close() {
    janitor.shutdownNow();
    for (Reader r : readers.values()) {
      r.close();
    }
    client.close();
  }
}
