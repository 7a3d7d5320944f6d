package dev.thaw.crypto;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.function.Supplier;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.bouncycastle.crypto.generators.SCrypt;

/**
 * A Proxmox Backup key file (JSON): the encryption key, either in the clear ({@code kdf: null}) or
 * wrapped with AES-256-GCM under a key derived from a passphrase (scrypt or PBKDF2).
 *
 * <p>Instances are immutable. Error messages name the file's fingerprint or hint, never key
 * material or the passphrase.
 */
public final class KeyFile {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int MIN_PASSPHRASE = 5;

  /** scrypt memory bound (bytes) accepted from a key file: 128*r*n*p must stay below. */
  private static final long SCRYPT_MAX_MEMORY = 1025L * 1024 * 1024;

  private final ObjectNode json;
  private final Kdf kdf;

  private KeyFile(ObjectNode json, Kdf kdf) {
    this.json = json;
    this.kdf = kdf;
  }

  /** Parses a key file's JSON text. */
  public static KeyFile parse(byte[] text) throws IOException {
    JsonNode node;
    try {
      node = JSON.readTree(text);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IOException("not a key file (invalid JSON): " + e.getOriginalMessage());
    }
    if (!(node instanceof ObjectNode obj) || !obj.has("data")) {
      throw new IOException("not a key file (no \"data\" field)");
    }
    JsonNode k = obj.get("kdf");
    Kdf kdf;
    if (k == null || k.isNull()) {
      kdf = Kdf.NONE;
    } else if (k.has("Scrypt")) {
      kdf = Kdf.SCRYPT;
    } else if (k.has("PBKDF2")) {
      kdf = Kdf.PBKDF2;
    } else {
      throw new IOException(
          "the \"kdf\" field must be null or an object {\"Scrypt\": {...}} or"
              + " {\"PBKDF2\": {...}}, as Proxmox writes it; this file has "
              + abbreviate(k.toString())
              + " (damaged or hand-edited?)");
    }
    return new KeyFile(obj, kdf);
  }

  private static String abbreviate(String s) {
    return s.length() > 60 ? s.substring(0, 60) + "..." : s;
  }

  /** How the key is protected. */
  public Kdf kdf() {
    return kdf;
  }

  /** The password hint, or null. */
  public String hint() {
    JsonNode h = json.get("hint");
    return h == null || h.isNull() ? null : h.asText();
  }

  /** The key file's JSON text. */
  public byte[] toJson() {
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(json);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Unwraps the key. {@code passphrase} is asked only when the key is protected.
   *
   * @throws IOException on a wrong passphrase, a damaged file or a fingerprint mismatch
   */
  public CryptConfig open(Supplier<byte[]> passphrase) throws IOException {
    byte[] data = base64(json.get("data"), "data");
    byte[] raw;
    if (kdf == Kdf.NONE) {
      raw = data;
    } else {
      byte[] pass = passphrase.get();
      if (pass == null || pass.length < MIN_PASSPHRASE) {
        throw new IOException("passphrase too short (at least " + MIN_PASSPHRASE + " characters)");
      }
      byte[] derived = derive(pass);
      if (data.length < 32) {
        throw new IOException("key file data is too short");
      }
      try {
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
        c.init(
            Cipher.DECRYPT_MODE,
            new SecretKeySpec(derived, "AES"),
            new GCMParameterSpec(128, Arrays.copyOfRange(data, 0, 16)));
        byte[] in = new byte[data.length - 16];
        System.arraycopy(data, 32, in, 0, data.length - 32);
        System.arraycopy(data, 16, in, data.length - 32, 16);
        raw = c.doFinal(in);
      } catch (AEADBadTagException e) {
        String hint = hint();
        throw new IOException(
            "unable to decrypt the key: wrong passphrase?"
                + (hint != null ? " (hint: " + hint + ")" : ""));
      } catch (GeneralSecurityException e) {
        throw new IOException("unable to decrypt the key: " + e.getMessage());
      } finally {
        Arrays.fill(derived, (byte) 0);
      }
    }
    if (raw.length != 32) {
      throw new IOException("key file holds a key of " + raw.length + " bytes, expected 32");
    }
    CryptConfig cfg = new CryptConfig(raw);
    Arrays.fill(raw, (byte) 0);
    JsonNode fp = json.get("fingerprint");
    if (fp != null && !fp.isNull()) {
      byte[] stored = parseFingerprint(fp.asText());
      if (!Arrays.equals(stored, cfg.fingerprint())) {
        throw new IOException(
            "key file fingerprint "
                + CryptConfig.formatFingerprint(stored, 8)
                + " does not match its key ("
                + cfg.shortFingerprint()
                + ")");
      }
    }
    return cfg;
  }

  private byte[] derive(byte[] pass) throws IOException {
    JsonNode k = json.get("kdf");
    if (kdf == Kdf.SCRYPT) {
      JsonNode s = k.get("Scrypt");
      long n = s.path("n").asLong();
      long r = s.path("r").asLong();
      long p = s.path("p").asLong();
      if (n < 2
          || (n & (n - 1)) != 0
          || r < 1
          || p < 1
          || 128 * r * n * p > SCRYPT_MAX_MEMORY
          || n > Integer.MAX_VALUE) {
        throw new IOException(
            "key file has unusable scrypt parameters n=" + n + " r=" + r + " p=" + p);
      }
      return SCrypt.generate(pass, base64(s.get("salt"), "salt"), (int) n, (int) r, (int) p, 32);
    }
    JsonNode s = k.get("PBKDF2");
    int iter = s.path("iter").asInt();
    if (iter < 1) {
      throw new IOException("key file has an unusable PBKDF2 iteration count " + iter);
    }
    return CryptConfig.pbkdf2Sha256(pass, base64(s.get("salt"), "salt"), iter);
  }

  /**
   * Creates a key file for a new random key.
   *
   * @param passphrase required unless {@code kdf} is {@link Kdf#NONE}
   */
  public static KeyFile create(Kdf kdf, byte[] passphrase, SecureRandom random) {
    byte[] raw = new byte[32];
    random.nextBytes(raw);
    try {
      return wrap(raw, kdf, passphrase, random, Instant.now().getEpochSecond());
    } finally {
      Arrays.fill(raw, (byte) 0);
    }
  }

  /** Wraps a given raw key; package-private for tests. */
  static KeyFile wrap(byte[] raw, Kdf kdf, byte[] passphrase, SecureRandom random, long now) {
    ObjectNode obj = JSON.createObjectNode();
    byte[] data;
    switch (kdf) {
      case NONE -> {
        obj.putNull("kdf");
        data = raw.clone();
      }
      case SCRYPT -> {
        if (passphrase == null || passphrase.length < MIN_PASSPHRASE) {
          throw new IllegalArgumentException(
              "passphrase too short (at least " + MIN_PASSPHRASE + " characters)");
        }
        byte[] salt = new byte[32];
        random.nextBytes(salt);
        ObjectNode s = obj.putObject("kdf").putObject("Scrypt");
        s.put("n", 65536)
            .put("r", 8)
            .put("p", 1)
            .put("salt", Base64.getEncoder().encodeToString(salt));
        byte[] derived = SCrypt.generate(passphrase, salt, 65536, 8, 1, 32);
        byte[] iv = new byte[16];
        random.nextBytes(iv);
        try {
          Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
          c.init(
              Cipher.ENCRYPT_MODE,
              new SecretKeySpec(derived, "AES"),
              new GCMParameterSpec(128, iv));
          byte[] out = c.doFinal(raw); // ciphertext(32) || tag(16)
          data = new byte[16 + 16 + 32];
          System.arraycopy(iv, 0, data, 0, 16);
          System.arraycopy(out, 32, data, 16, 16);
          System.arraycopy(out, 0, data, 32, 32);
        } catch (GeneralSecurityException e) {
          throw new IllegalStateException("AES-GCM unavailable", e);
        } finally {
          Arrays.fill(derived, (byte) 0);
        }
      }
      default ->
          throw new IllegalArgumentException(
              "thaw creates key files with scrypt or none, not " + kdf);
    }
    String time =
        DateTimeFormatter.ISO_OFFSET_DATE_TIME
            .format(Instant.ofEpochSecond(now).atOffset(ZoneOffset.UTC))
            .replace("+00:00", "Z");
    obj.put("created", time);
    obj.put("modified", time);
    obj.put("data", Base64.getEncoder().encodeToString(data));
    obj.put("fingerprint", CryptConfig.formatFingerprint(new CryptConfig(raw).fingerprint(), 32));
    return new KeyFile(obj, kdf);
  }

  /** The creation time, for display; null when absent or unparsable. */
  public Instant created() {
    JsonNode c = json.get("created");
    if (c == null) {
      return null;
    }
    try {
      return c.isNumber() ? Instant.ofEpochSecond(c.asLong()) : Instant.parse(c.asText());
    } catch (DateTimeParseException e) {
      return null;
    }
  }

  private static byte[] base64(JsonNode n, String field) throws IOException {
    if (n == null || !n.isTextual()) {
      throw new IOException("key file field \"" + field + "\" is missing");
    }
    try {
      return Base64.getDecoder().decode(n.asText().getBytes(StandardCharsets.US_ASCII));
    } catch (IllegalArgumentException e) {
      throw new IOException("key file field \"" + field + "\" is not base64");
    }
  }

  private static byte[] parseFingerprint(String s) throws IOException {
    try {
      byte[] b = HexFormat.of().parseHex(s.replace(":", ""));
      if (b.length != 32) {
        throw new IOException("key file fingerprint has " + b.length + " bytes");
      }
      return b;
    } catch (IllegalArgumentException e) {
      throw new IOException("key file fingerprint is not hex");
    }
  }
}
