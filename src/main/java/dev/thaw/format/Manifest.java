package dev.thaw.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.thaw.crypto.CryptConfig;
import java.io.IOException;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A snapshot manifest ({@code index.json.blob}'s JSON): backup type, id and time, and the files of
 * the snapshot with size, checksum and crypt mode. Signed with HMAC-SHA256 under the key's HMAC key
 * when the snapshot was made with a key (crypt-mode {@code encrypt} or {@code sign-only}), the
 * key's fingerprint beside it in {@code unprotected}, as Proxmox Backup Server's {@code
 * BackupManifest} does. Parsing records whether the manifest is signed and whether that signature
 * was checked; what to trust is decided by the caller. Immutable.
 */
public final class Manifest {
  /** The manifest's file name in a snapshot directory. */
  public static final String FILE_NAME = "index.json.blob";

  /**
   * The most files a manifest may list (Proxmox writes a handful per snapshot): more is refused, so
   * that a hostile manifest cannot make listing or mounting a snapshot crawl.
   */
  public static final int MAX_FILES = 10_000;

  /** The most bytes of manifest JSON read. */
  public static final int MAX_JSON_BYTES = 8 << 20;

  private static final ObjectMapper JSON = new ObjectMapper();

  /** How a file of the snapshot is protected. */
  public enum CryptMode {
    NONE("none"),
    ENCRYPT("encrypt"),
    SIGN_ONLY("sign-only");

    private final String json;

    CryptMode(String json) {
      this.json = json;
    }

    public String json() {
      return json;
    }

    /** The mode named as in a manifest: {@code none}, {@code encrypt} or {@code sign-only}. */
    public static CryptMode parse(String s) throws FormatException {
      for (CryptMode m : values()) {
        if (m.json.equals(s)) {
          return m;
        }
      }
      throw new FormatException("manifest: unknown crypt-mode " + s);
    }
  }

  /** One file of a snapshot. */
  public record FileInfo(String filename, CryptMode cryptMode, long size, byte[] csum) {
    public FileInfo {
      csum = csum.clone();
    }

    /**
     * Whether the file's chunks (or, for a blob, the file itself) are encrypted: only for
     * crypt-mode {@code encrypt}; {@code sign-only} data is stored plain under plain SHA-256
     * digests, like {@code none} (PBS {@code FileInfo::chunk_crypt_mode}).
     */
    public boolean encrypted() {
      return cryptMode == CryptMode.ENCRYPT;
    }

    @Override
    public byte[] csum() {
      return csum.clone();
    }
  }

  private final String backupType;
  private final String backupId;
  private final long backupTime;
  private final List<FileInfo> files;
  private final Map<String, FileInfo> byName;
  private final String keyFingerprint;
  private final List<String> warnings;
  private final boolean signed;
  private final boolean signatureChecked;

  /** A manifest to write (unsigned until {@link #toJson} is given a key). */
  public Manifest(
      String backupType,
      String backupId,
      long backupTime,
      List<FileInfo> files,
      String keyFingerprint) {
    this(backupType, backupId, backupTime, files, keyFingerprint, List.of(), false, false);
  }

  private Manifest(
      String backupType,
      String backupId,
      long backupTime,
      List<FileInfo> files,
      String keyFingerprint,
      List<String> warnings,
      boolean signed,
      boolean signatureChecked) {
    this.backupType = backupType;
    this.backupId = backupId;
    this.backupTime = backupTime;
    this.files = List.copyOf(files);
    this.keyFingerprint = keyFingerprint;
    this.warnings = List.copyOf(warnings);
    Map<String, FileInfo> m = new HashMap<>();
    for (FileInfo f : this.files) {
      m.putIfAbsent(f.filename(), f);
    }
    this.byName = m;
    this.signed = signed;
    this.signatureChecked = signatureChecked;
  }

  /**
   * Parses manifest JSON. When {@code crypt} is given and the manifest is signed, checks that the
   * key's fingerprint is the one the manifest names (when it names one) and that the signature
   * verifies; either failing is an error. An unsigned manifest parses with or without a key: {@link
   * #signatureChecked()} tells the caller that nothing vouches for it.
   */
  public static Manifest parse(byte[] json, CryptConfig crypt) throws FormatException {
    JsonNode root;
    try {
      root = JSON.readTree(json);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new FormatException("manifest is not valid JSON: " + e.getOriginalMessage());
    } catch (IOException e) {
      throw new FormatException("manifest cannot be read: " + e.getMessage());
    }
    if (!(root instanceof ObjectNode obj)) {
      throw new FormatException("manifest is not a JSON object");
    }
    String fp = null;
    JsonNode fpNode = obj.path("unprotected").path("key-fingerprint");
    if (fpNode.isTextual()) {
      fp = fpNode.asText();
    }
    JsonNode sig = obj.get("signature");
    boolean signed = sig != null && sig.isTextual();
    if (crypt != null && signed) {
      if (fp != null && !sameFingerprint(fp, crypt)) {
        throw new FormatException(
            "wrong key: the snapshot was made with key "
                + shortFp(fp)
                + ", the given key is "
                + crypt.shortFingerprint());
      }
      String expected = HexFormat.of().formatHex(signature(obj, crypt));
      if (!MessageDigest.isEqual(
          expected.getBytes(java.nio.charset.StandardCharsets.US_ASCII),
          sig.asText().getBytes(java.nio.charset.StandardCharsets.UTF_8))) {
        throw new FormatException("manifest signature does not verify (altered, or wrong key)");
      }
    }
    List<FileInfo> files = new ArrayList<>();
    List<String> warnings = new ArrayList<>();
    Set<String> names = new HashSet<>();
    JsonNode list = obj.path("files");
    if (list.size() > MAX_FILES) {
      throw new FormatException(
          "manifest lists "
              + list.size()
              + " files, more than the "
              + MAX_FILES
              + " a snapshot may have; damaged or not a backup manifest");
    }
    for (JsonNode f : list) {
      String name = f.path("filename").asText(null);
      String csum = f.path("csum").asText("");
      if (name == null || csum.length() != 64 || !f.path("size").canConvertToLong()) {
        throw new FormatException("manifest has a malformed file entry: " + f);
      }
      byte[] c;
      try {
        c = HexFormat.of().parseHex(csum);
      } catch (IllegalArgumentException e) {
        throw new FormatException("manifest has a malformed csum for " + name);
      }
      CryptMode mode =
          f.has("crypt-mode") ? CryptMode.parse(f.get("crypt-mode").asText()) : CryptMode.NONE;
      long size = f.get("size").asLong();
      // an entry that is no plain file name, or a second one of a name, is left out (with a
      // warning) so that the snapshot's other files stay reachable and no path can escape
      String bad =
          !isPlainName(name)
              ? "is not a plain file name"
              : size < 0
                  ? "has a negative size (" + size + ")"
                  : !names.add(name) ? "is listed twice (the first entry is used)" : null;
      if (bad != null) {
        warnings.add("manifest entry '" + printable(name) + "' " + bad + "; left out");
        continue;
      }
      files.add(new FileInfo(name, mode, size, c));
    }
    JsonNode type = obj.get("backup-type");
    JsonNode id = obj.get("backup-id");
    JsonNode time = obj.get("backup-time");
    if (type == null || id == null || time == null || !time.canConvertToLong()) {
      throw new FormatException("manifest lacks backup-type, backup-id or backup-time");
    }
    return new Manifest(
        type.asText(),
        id.asText(),
        time.asLong(),
        files,
        fp,
        warnings,
        signed,
        crypt != null && signed);
  }

  /** A name a snapshot directory can hold: no path, no dot file, no control characters. */
  private static boolean isPlainName(String name) {
    if (name.isEmpty() || name.length() > 255 || name.startsWith(".")) {
      return false;
    }
    for (int i = 0; i < name.length(); i++) {
      char ch = name.charAt(i);
      if (ch == '/' || ch == '\\' || ch < 0x20 || ch == 0x7f) {
        return false;
      }
    }
    return true;
  }

  /** A name as a message may show it: control characters escaped, long ones cut. */
  private static String printable(String name) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < name.length() && sb.length() < 80; i++) {
      char ch = name.charAt(i);
      sb.append(ch < 0x20 || ch == 0x7f ? String.format("\\x%02x", (int) ch) : String.valueOf(ch));
    }
    return name.length() > 80 ? sb + "..." : sb.toString();
  }

  private static boolean sameFingerprint(String fp, CryptConfig crypt) {
    return fp.replace(":", "").equalsIgnoreCase(HexFormat.of().formatHex(crypt.fingerprint()));
  }

  private static String shortFp(String fp) {
    return fp.length() > 23 ? fp.substring(0, 23) : fp;
  }

  private static byte[] signature(ObjectNode manifest, CryptConfig crypt) {
    ObjectNode signed = manifest.deepCopy();
    signed.remove("unprotected");
    signed.remove("signature");
    return crypt.authTag(CanonicalJson.encode(signed));
  }

  /** The manifest JSON, signed and carrying the key fingerprint when {@code crypt} is given. */
  public byte[] toJson(CryptConfig crypt) {
    ObjectNode obj = JSON.createObjectNode();
    obj.put("backup-type", backupType);
    obj.put("backup-id", backupId);
    obj.put("backup-time", backupTime);
    ArrayNode arr = obj.putArray("files");
    for (FileInfo f : files) {
      ObjectNode o = arr.addObject();
      o.put("filename", f.filename());
      o.put("crypt-mode", f.cryptMode().json());
      o.put("size", f.size());
      o.put("csum", HexFormat.of().formatHex(f.csum()));
    }
    ObjectNode unprotected = obj.putObject("unprotected");
    if (crypt != null) {
      obj.put("signature", HexFormat.of().formatHex(signature(obj, crypt)));
      unprotected.put("key-fingerprint", CryptConfig.formatFingerprint(crypt.fingerprint(), 32));
    } else {
      obj.putNull("signature");
    }
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(obj);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  public String backupType() {
    return backupType;
  }

  public String backupId() {
    return backupId;
  }

  /** Backup time, epoch seconds. */
  public long backupTime() {
    return backupTime;
  }

  public List<FileInfo> files() {
    return files;
  }

  /** Whether the manifest carries a signature (checked or not). */
  public boolean signed() {
    return signed;
  }

  /** Whether the signature was verified under the key given to {@link #parse}. */
  public boolean signatureChecked() {
    return signatureChecked;
  }

  /** Whether any file of the snapshot is encrypted (crypt-mode {@code encrypt}). */
  public boolean encrypted() {
    return files.stream().anyMatch(FileInfo::encrypted);
  }

  /** The full fingerprint of the key the snapshot was made with, if any. */
  public Optional<String> keyFingerprint() {
    return Optional.ofNullable(keyFingerprint);
  }

  /** The entry for {@code filename}, if the snapshot has it. */
  public Optional<FileInfo> file(String filename) {
    return Optional.ofNullable(byName.get(filename));
  }

  /** What parsing left out and why (entries that are no plain file name, duplicates). */
  public List<String> warnings() {
    return warnings;
  }
}
