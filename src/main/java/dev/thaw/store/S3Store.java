package dev.thaw.store;

import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;
import dev.thaw.format.Digest;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.parsers.ParserConfigurationException;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.Request;
import okhttp3.RequestBody;
import org.w3c.dom.Document;
import org.w3c.dom.NodeList;
import software.amazon.awssdk.http.ContentStreamProvider;
import software.amazon.awssdk.http.SdkHttpMethod;
import software.amazon.awssdk.http.SdkHttpRequest;
import software.amazon.awssdk.http.auth.aws.signer.AwsV4HttpSigner;
import software.amazon.awssdk.http.auth.spi.signer.SignedRequest;
import software.amazon.awssdk.identity.spi.AwsCredentialsIdentity;

/**
 * A datastore in an S3 bucket, laid out as Proxmox Backup Server 4 keeps one: {@code
 * PREFIX/.chunks/XXXX/<digest>} holds a chunk's raw blob and {@code PREFIX/.cnt/<snapshot>/<file>}
 * a snapshot's files. Requests are signed with AWS Signature Version 4 by the AWS SDK's standalone
 * signer and sent through the process's OkHttp client. A snapshot is listed only once its manifest
 * ({@code index.json.blob}) exists, and the manifest is uploaded last, so a reader never sees a
 * half-written snapshot. Thread-safe.
 */
final class S3Store implements WritableStore {
  private static final String MANIFEST = "index.json.blob";

  /**
   * The object a Proxmox Backup Server 4 keeps in a datastore it uses (JSON with its host name).
   */
  static final String IN_USE = ".in-use";

  private static final MediaType OCTETS = MediaType.get("application/octet-stream");
  private static final Pattern ERROR_CODE = Pattern.compile("<Code>([^<]{1,100})</Code>");
  private static final Pattern ERROR_MESSAGE = Pattern.compile("<Message>([^<]{1,300})</Message>");

  /** Where the bucket is and how to address it. */
  record Endpoint(HttpUrl url, String region, boolean pathStyle) {}

  private final String bucket;
  private final String prefix;
  private final Endpoint endpoint;
  private final AwsCredentialsIdentity credentials;
  private final HttpExchange http;
  private final AwsV4HttpSigner signer = AwsV4HttpSigner.create();

  /**
   * @param prefix the datastore's key prefix in the bucket, without leading or trailing '/' (may be
   *     empty)
   */
  S3Store(
      String bucket,
      String prefix,
      Endpoint endpoint,
      AwsCredentialsIdentity credentials,
      HttpExchange http) {
    this.bucket = bucket;
    this.prefix = prefix.isEmpty() ? "" : prefix + "/";
    this.endpoint = endpoint;
    this.credentials = credentials;
    this.http = http;
  }

  private String chunkKey(Digest d) {
    return prefix + ChunkStore.chunkPath(d);
  }

  private String contentKey(SnapshotPath snapshot, String file) {
    return prefix + ".cnt/" + snapshot + "/" + SnapshotPath.checkFileName(file);
  }

  @Override
  public byte[] readChunk(Digest digest, int maxBytes) throws IOException {
    return get(chunkKey(digest), "chunk " + digest.hex(), maxBytes, null).body();
  }

  @Override
  public Buffer readChunk(Digest digest, int maxBytes, BufferPool pool) throws IOException {
    return get(chunkKey(digest), "chunk " + digest.hex(), maxBytes, pool).buffer();
  }

  @Override
  public byte[] readFile(SnapshotPath snapshot, String file) throws IOException {
    return get(contentKey(snapshot, file), file, MAX_FILE_BYTES, null).body();
  }

  /** A GET answered 200, its body read into {@code pool} when not null. */
  private HttpExchange.Reply get(String key, String what, long maxBytes, BufferPool pool)
      throws IOException {
    HttpExchange.Reply r = send(SdkHttpMethod.GET, key, Map.of(), null, what, maxBytes, pool);
    if (r.code() != 200) {
      throw failure(r, what, key);
    }
    return r;
  }

  @Override
  public boolean hasChunk(Digest digest) throws IOException {
    String key = chunkKey(digest);
    HttpExchange.Reply r = send(SdkHttpMethod.HEAD, key, Map.of(), null, "chunk " + digest.hex());
    if (r.code() == 200) {
      return true;
    }
    if (r.code() == 404) {
      return false;
    }
    throw failure(r, "chunk " + digest.hex(), key);
  }

  @Override
  public void writeChunk(Digest digest, byte[] blob) throws IOException {
    put(chunkKey(digest), blob, "chunk " + digest.hex());
  }

  /** The group's {@code owner} object, where PBS 4 keeps it: {@code PREFIX/.cnt/GROUP/owner}. */
  @Override
  public boolean ensureGroupOwner(SnapshotPath snapshot, String authId) throws IOException {
    String key = prefix + ".cnt/" + snapshot.group() + "/" + GROUP_OWNER_FILE;
    HttpExchange.Reply head = send(SdkHttpMethod.HEAD, key, Map.of(), null, GROUP_OWNER_FILE);
    if (head.code() == 200) {
      return false;
    }
    if (head.code() != 404) {
      throw failure(head, GROUP_OWNER_FILE, key);
    }
    put(key, (authId + "\n").getBytes(StandardCharsets.UTF_8), GROUP_OWNER_FILE);
    return true;
  }

  /**
   * Refuses a datastore that a Proxmox Backup Server uses: PBS 4 keeps {@code PREFIX/.in-use}
   * there, lists snapshots from its own local cache, and its garbage collection deletes every chunk
   * object that has no marker in that cache, so chunks written behind its back vanish.
   *
   * @throws StoreException naming the PBS host and what to do instead
   */
  void refuseIfInUse() throws IOException {
    String key = prefix + IN_USE;
    HttpExchange.Reply r = send(SdkHttpMethod.GET, key, Map.of(), null, "in-use marker");
    if (r.code() == 404 && !new String(r.body(), StandardCharsets.UTF_8).contains("NoSuchBucket")) {
      return;
    }
    if (r.code() != 200) {
      throw failure(r, "in-use marker", key);
    }
    String host = null;
    try {
      host =
          new com.fasterxml.jackson.databind.ObjectMapper()
              .readTree(r.body())
              .path("hostname")
              .asText(null);
    } catch (IOException e) {
      // not JSON: the object's presence is what counts
    }
    throw new StoreException(
        "refusing to write into "
            + shown(prefix)
            + ": a Proxmox Backup Server"
            + (host != null ? " on host '" + host + "'" : "")
            + " uses this datastore ("
            + shown(key)
            + " exists). That server lists snapshots from its own cache, and its garbage collection"
            + " deletes every chunk object it has no record of, so chunks written by thaw would vanish"
            + " at its next collection and thaw's snapshots would break. Back up into that server with"
            + " proxmox-backup-client, or into another prefix or bucket. Reading it (ls, restore, mount,"
            + " verify) is always safe",
        false);
  }

  private void put(String key, byte[] data, String what) throws IOException {
    HttpExchange.Reply r = send(SdkHttpMethod.PUT, key, Map.of(), data, what);
    if (r.code() != 200) {
      throw failure(r, what, key);
    }
  }

  private void delete(String key) throws IOException {
    HttpExchange.Reply r = send(SdkHttpMethod.DELETE, key, Map.of(), null, key);
    if (r.code() != 204 && r.code() != 200 && r.code() != 404) {
      throw failure(r, key, key);
    }
  }

  @Override
  public SnapshotWriter createSnapshot(SnapshotPath snapshot) {
    return new SnapshotWriter() {
      private final Map<String, byte[]> files = new java.util.LinkedHashMap<>();

      @Override
      public void writeFile(String name, byte[] data) {
        files.put(SnapshotPath.checkFileName(name), data);
      }

      @Override
      public void commit() throws IOException {
        String manifestKey = contentKey(snapshot, MANIFEST);
        HttpExchange.Reply head = send(SdkHttpMethod.HEAD, manifestKey, Map.of(), null, MANIFEST);
        if (head.code() == 200) {
          throw new java.nio.file.FileAlreadyExistsException(
              shown(manifestKey), null, "snapshot exists");
        }
        if (head.code() != 404) {
          throw failure(head, MANIFEST, manifestKey);
        }
        List<String> written = new ArrayList<>();
        try {
          // the manifest last: a snapshot is listed only once its manifest is there
          for (Map.Entry<String, byte[]> f : files.entrySet()) {
            if (!f.getKey().equals(MANIFEST)) {
              put(contentKey(snapshot, f.getKey()), f.getValue(), f.getKey());
              written.add(contentKey(snapshot, f.getKey()));
            }
          }
          byte[] manifest = files.get(MANIFEST);
          if (manifest != null) {
            put(manifestKey, manifest, MANIFEST);
          }
        } catch (IOException e) {
          for (String k : written) {
            try {
              delete(k);
            } catch (IOException suppressed) {
              e.addSuppressed(suppressed);
            }
          }
          throw e;
        }
      }

      @Override
      public void close() {
        files.clear();
      }
    };
  }

  /**
   * Every snapshot with a manifest, found by one paged ListObjectsV2 over {@code PREFIX/.cnt/} (a
   * datastore's content prefix holds a few objects per snapshot).
   */
  @Override
  public List<SnapshotPath> listSnapshots() throws IOException {
    String cnt = prefix + ".cnt/";
    List<SnapshotPath> out = new ArrayList<>();
    String token = null;
    int pages = 0;
    do {
      java.util.LinkedHashMap<String, String> q = new java.util.LinkedHashMap<>();
      q.put("list-type", "2");
      q.put("prefix", cnt);
      if (token != null) {
        q.put("continuation-token", token);
      }
      HttpExchange.Reply r = send(SdkHttpMethod.GET, "", q, null, "snapshot listing");
      if (r.code() != 200) {
        throw failure(r, "snapshot listing", cnt);
      }
      Document doc = parseXml(r.body());
      NodeList keys = doc.getElementsByTagName("Key");
      for (int i = 0; i < keys.getLength(); i++) {
        String key = keys.item(i).getTextContent();
        if (key.startsWith(cnt) && key.endsWith("/" + MANIFEST)) {
          String rel = key.substring(cnt.length(), key.length() - MANIFEST.length() - 1);
          try {
            out.add(SnapshotPath.parse(rel));
          } catch (IllegalArgumentException e) {
            // not a snapshot directory (a foreign object under .cnt/): skip it
          }
        }
      }
      boolean truncated = "true".equals(text(doc, "IsTruncated"));
      token = truncated ? text(doc, "NextContinuationToken") : null;
      if (truncated && (token == null || token.isEmpty())) {
        throw new StoreException(
            "snapshot listing of " + describe() + " is truncated but has no continuation token",
            false);
      }
      if (++pages > 100_000) {
        throw new StoreException("snapshot listing of " + describe() + " does not end", false);
      }
    } while (token != null);
    Collections.sort(out);
    return out;
  }

  private static String text(Document doc, String tag) {
    NodeList n = doc.getElementsByTagName(tag);
    return n.getLength() == 0 ? null : n.item(0).getTextContent();
  }

  private Document parseXml(byte[] body) throws StoreException {
    try {
      DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
      f.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
      f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
      f.setExpandEntityReferences(false);
      return f.newDocumentBuilder().parse(new ByteArrayInputStream(body));
    } catch (ParserConfigurationException | org.xml.sax.SAXException | IOException e) {
      throw new StoreException(
          "the S3 endpoint "
              + endpoint.url()
              + " answered a listing of "
              + describe()
              + " with something that is not S3 XML: "
              + e.getMessage(),
          false,
          e);
    }
  }

  /**
   * Signs and sends one request. The key is encoded strictly (RFC 3986 unreserved characters kept,
   * everything else escaped), which is both what goes on the wire and SigV4's canonical form, so
   * the signature holds for keys with ':' (snapshot times).
   */
  private HttpExchange.Reply send(
      SdkHttpMethod method, String key, Map<String, String> query, byte[] body, String what)
      throws StoreException {
    return send(method, key, query, body, what, MAX_FILE_BYTES, null);
  }

  private HttpExchange.Reply send(
      SdkHttpMethod method,
      String key,
      Map<String, String> query,
      byte[] body,
      String what,
      long maxBytes,
      BufferPool pool)
      throws StoreException {
    HttpUrl base = endpoint.url();
    String host = endpoint.pathStyle() ? base.host() : bucket + "." + base.host();
    StringBuilder path = new StringBuilder();
    String basePath = base.encodedPath();
    path.append(basePath.endsWith("/") ? basePath.substring(0, basePath.length() - 1) : basePath);
    if (endpoint.pathStyle()) {
      path.append('/').append(encode(bucket));
    }
    path.append('/');
    for (String seg : key.split("/", -1)) {
      path.append(encode(seg)).append('/');
    }
    path.setLength(path.length() - 1); // "" (the bucket itself) leaves ".../BUCKET/"
    HttpUrl.Builder ub =
        new HttpUrl.Builder()
            .scheme(base.scheme())
            .host(host)
            .port(base.port())
            .encodedPath(path.toString());
    SdkHttpRequest.Builder sb =
        SdkHttpRequest.builder()
            .method(method)
            .protocol(base.scheme())
            .host(host)
            .port(base.port())
            .encodedPath(path.toString());
    for (Map.Entry<String, String> q : query.entrySet()) {
      // strictly encoded on the wire too: some servers check the signature against the raw query
      ub.addEncodedQueryParameter(encode(q.getKey()), encode(q.getValue()));
      sb.putRawQueryParameter(q.getKey(), q.getValue());
    }
    if (body != null) {
      sb.putHeader("Content-Length", Integer.toString(body.length));
      sb.putHeader("Content-Type", OCTETS.toString());
    }
    HttpUrl url = ub.build();
    SignedRequest signed;
    try {
      signed =
          signer.sign(
              r ->
                  r.identity(credentials)
                      .request(sb.build())
                      .payload(
                          body == null ? null : ContentStreamProvider.fromByteArrayUnsafe(body))
                      .putProperty(AwsV4HttpSigner.SERVICE_SIGNING_NAME, "s3")
                      .putProperty(AwsV4HttpSigner.REGION_NAME, endpoint.region())
                      .putProperty(AwsV4HttpSigner.DOUBLE_URL_ENCODE, false)
                      .putProperty(AwsV4HttpSigner.NORMALIZE_PATH, false)
                      .putProperty(AwsV4HttpSigner.PAYLOAD_SIGNING_ENABLED, true));
    } catch (RuntimeException e) {
      throw new StoreException(
          what
              + ": cannot sign the request for "
              + shown(key)
              + ": "
              + e.getClass().getSimpleName(),
          false,
          e);
    }
    Request.Builder rb = new Request.Builder().url(url);
    for (Map.Entry<String, List<String>> h : signed.request().headers().entrySet()) {
      if (h.getKey().equalsIgnoreCase("Content-Length")
          || h.getKey().equalsIgnoreCase("Content-Type")) {
        continue; // OkHttp sets these from the body
      }
      for (String v : h.getValue()) {
        rb.addHeader(h.getKey(), v);
      }
    }
    switch (method) {
      case GET -> rb.get();
      case HEAD -> rb.head();
      case DELETE -> rb.delete();
      case PUT -> rb.put(RequestBody.create(body, OCTETS));
      default -> throw new IllegalArgumentException(method.name());
    }
    return http.execute(rb.build(), what, shown(key), maxBytes, pool);
  }

  /** RFC 3986 strict percent-encoding of one path segment, as SigV4 canonicalises it. */
  static String encode(String segment) {
    StringBuilder sb = new StringBuilder();
    for (byte b : segment.getBytes(StandardCharsets.UTF_8)) {
      int c = b & 0xff;
      if ((c >= 'A' && c <= 'Z')
          || (c >= 'a' && c <= 'z')
          || (c >= '0' && c <= '9')
          || c == '-'
          || c == '.'
          || c == '_'
          || c == '~') {
        sb.append((char) c);
      } else {
        sb.append('%')
            .append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
            .append(Character.toUpperCase(Character.forDigit(c & 15, 16)));
      }
    }
    return sb.toString();
  }

  /** Maps an S3 error answer to what the user can act on. */
  private StoreException failure(HttpExchange.Reply r, String what, String key) {
    int code = r.code();
    String text = new String(r.body(), StandardCharsets.UTF_8);
    Matcher m = ERROR_CODE.matcher(text);
    String s3Code = m.find() ? m.group(1) : "";
    Matcher mm = ERROR_MESSAGE.matcher(text);
    String s3Message = mm.find() ? ": " + mm.group(1) : "";
    String where = shown(key);
    String detail = "HTTP " + code + (s3Code.isEmpty() ? "" : " " + s3Code);
    if (s3Code.equals("NoSuchBucket")) {
      return new NotFoundException(
          "bucket '" + bucket + "' does not exist at " + endpoint.url() + " (" + detail + ")");
    }
    if (code == 301
        || code == 307
        || s3Code.equals("AuthorizationHeaderMalformed")
        || s3Code.equals("PermanentRedirect")) {
      String region = r.headers().get("x-amz-bucket-region");
      return new StoreException(
          what
              + ": the bucket '"
              + bucket
              + "' is in another region ("
              + detail
              + ")"
              + (region != null ? "; use --s3-region " + region : "; check --s3-region")
              + " for "
              + where,
          false);
    }
    if (code == 400 && s3Code.equals("RequestTimeTooSkewed")) {
      return new StoreException(
          what
              + ": this machine's clock is too far from the server's ("
              + detail
              + ") for "
              + where,
          false);
    }
    String hint =
        switch (s3Code) {
          case "InvalidAccessKeyId" ->
              "the access key is not known to "
                  + endpoint.url()
                  + "; check AWS_ACCESS_KEY_ID or the credentials file";
          case "SignatureDoesNotMatch" ->
              "the signature does not match; check AWS_SECRET_ACCESS_KEY" + " and --s3-region";
          case "RequestTimeTooSkewed" -> "this machine's clock is too far from the server's";
          default -> "check the credentials and the bucket policy";
        };
    return r.failure(
        what,
        where,
        detail + s3Message,
        hint,
        s3Code.equals("SlowDown")
            || s3Code.equals("RequestTimeout")
            || s3Code.equals("InternalError"));
  }

  /** An object as messages show it: {@code s3://bucket/key}. */
  private String shown(String key) {
    return "s3://" + bucket + "/" + key;
  }

  @Override
  public String location(Digest digest) {
    return shown(chunkKey(digest));
  }

  @Override
  public String location(SnapshotPath snapshot, String file) {
    return shown(prefix + ".cnt/" + snapshot + "/" + file);
  }

  @Override
  public String describe() {
    return "s3://" + bucket + "/" + prefix + " at " + endpoint.url();
  }

  @Override
  public void close() {
    http.close();
  }

  /** The endpoint for a region when none is given: AWS S3's regional endpoint. */
  static HttpUrl awsEndpoint(String region) {
    return HttpUrl.get(URI.create("https://s3." + region + ".amazonaws.com/"));
  }
}
