package dev.thaw.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;
import dev.thaw.format.Digest;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import okhttp3.HttpUrl;
import okhttp3.Request;

/**
 * A read-only datastore served by a static HTTP(S) server (nginx, for example) under a URL prefix,
 * with the same relative paths as on disk. Listing snapshots needs a JSON directory index ({@code
 * autoindex_format json} in nginx); explicit snapshot names always work. Thread-safe; the OkHttp
 * client may be shared with other stores of the process.
 */
final class HttpStore implements ChunkStore {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String LISTING = "directory listing";

  /** Snapshot directories listed at once to find their manifests. */
  private static final int LISTING_PARALLEL = 8;

  private final HttpUrl base;
  private final HttpExchange http;
  private final String authorization;
  private final ChunkLayout layout;

  /**
   * @param base the datastore's URL; user and password in it become a basic-auth header and are
   *     kept out of every URL that appears in a message
   * @param layout where chunks live below {@code base}
   */
  HttpStore(HttpUrl base, HttpExchange http, String authorization, ChunkLayout layout) {
    this.layout = layout;
    this.authorization =
        authorization != null
            ? authorization
            : base.username().isEmpty()
                ? null
                : okhttp3.Credentials.basic(base.username(), base.password());
    HttpUrl b = base.newBuilder().username("").password("").build();
    this.base =
        b.pathSegments().get(b.pathSize() - 1).isEmpty()
            ? b
            : b.newBuilder().addPathSegment("").build();
    this.http = http;
  }

  private HttpUrl url(String relPath) {
    return base.resolve(relPath);
  }

  @Override
  public byte[] readChunk(Digest digest, int maxBytes) throws IOException {
    return get(url(layout.path(digest)), "chunk " + digest.hex(), maxBytes, null).body();
  }

  @Override
  public Buffer readChunk(Digest digest, int maxBytes, BufferPool pool) throws IOException {
    return get(url(layout.path(digest)), "chunk " + digest.hex(), maxBytes, pool).buffer();
  }

  /** The file {@code name} right below the store's URL (for example an index beside a store). */
  byte[] readRelative(String name, String what) throws IOException {
    return get(url(name), what, MAX_FILE_BYTES, null).body();
  }

  /** Where {@link #readRelative} reads {@code name} from, without credentials. */
  String location(String name) {
    return url(name).toString();
  }

  @Override
  public byte[] readFile(SnapshotPath snapshot, String file) throws IOException {
    return get(url(snapshot + "/" + SnapshotPath.checkFileName(file)), file, MAX_FILE_BYTES, null)
        .body();
  }

  /** A GET answered 200, its body read into {@code pool} when not null. */
  private HttpExchange.Reply get(HttpUrl url, String what, long maxBytes, BufferPool pool)
      throws IOException {
    Request.Builder rb = new Request.Builder().url(url).get();
    if (authorization != null) {
      rb.header("Authorization", authorization);
    }
    HttpExchange.Reply r = http.execute(rb.build(), what, url.toString(), maxBytes, pool);
    int code = r.code();
    if (code == 200) {
      String type = r.headers().get("Content-Type");
      if (type != null
          && type.toLowerCase(java.util.Locale.ROOT).startsWith("text/html")
          && !what.equals(LISTING)) {
        if (r.buffer() != null) {
          r.buffer().release();
        }
        // a web page where a backup file belongs: a wrong URL, a login or error page, a proxy
        throw new StoreException(
            what
                + ": the server sent a web page ("
                + type
                + ") instead of"
                + " the file for "
                + url
                + "; check the store URL",
            false);
      }
      return r;
    }
    throw r.failure(
        what,
        url.toString(),
        "HTTP " + code,
        authorization == null
            ? "give credentials with --auth-file or $THAW_STORE_TOKEN"
            : "check the credentials",
        false);
  }

  @Override
  public List<SnapshotPath> listSnapshots() throws IOException {
    return SnapshotLister.list(this::listDir, LISTING_PARALLEL);
  }

  private List<SnapshotLister.Entry> listDir(String rel) throws IOException {
    HttpUrl url = url(rel);
    byte[] body;
    try {
      body = get(url, LISTING, MAX_FILE_BYTES, null).body();
    } catch (NotFoundException e) {
      return List.of();
    }
    JsonNode arr;
    try {
      arr = JSON.readTree(body);
    } catch (IOException e) {
      arr = null;
    }
    if (arr == null || !arr.isArray()) {
      throw new StoreException(
          "cannot list snapshots: "
              + url
              + " did not return a JSON directory"
              + " index (nginx: autoindex on; autoindex_format json;). Name the snapshot explicitly"
              + " instead.",
          false);
    }
    List<SnapshotLister.Entry> out = new ArrayList<>();
    for (JsonNode e : arr) {
      out.add(
          new SnapshotLister.Entry(
              e.path("name").asText(), "directory".equals(e.path("type").asText())));
    }
    return out;
  }

  @Override
  public String location(Digest digest) {
    return url(layout.path(digest)).toString();
  }

  @Override
  public String location(SnapshotPath snapshot, String file) {
    return url(snapshot + "/" + file).toString();
  }

  @Override
  public String describe() {
    return base.toString();
  }

  @Override
  public void close() {
    http.close();
  }
}
