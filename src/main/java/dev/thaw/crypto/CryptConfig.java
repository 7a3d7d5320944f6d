package dev.thaw.crypto;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.function.Supplier;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.bouncycastle.crypto.digests.SHA256Digest;
import org.bouncycastle.crypto.generators.PKCS5S2ParametersGenerator;
import org.bouncycastle.crypto.params.KeyParameter;

/**
 * The keys of an encrypted snapshot: the 32-byte AES-256-GCM encryption key and the id key derived
 * from it (PBKDF2-HMAC-SHA256, salt {@code "_id_key"}, 10 iterations) that keys chunk digests and
 * the manifest signature.
 *
 * <p>Blobs are encrypted and decrypted by the system's OpenSSL libcrypto when it loads and passes
 * its known-answer check ({@link OpenSslGcm}), else by the JDK; {@code THAW_GCM=jdk} in the
 * environment chooses the JDK. The choice is made once per process ({@link #gcmImplementation()}
 * names it).
 *
 * <p>Immutable and thread-safe: every operation creates its own JCA objects or cipher context.
 * {@link #toString()} shows only the fingerprint; key bytes never appear in messages.
 */
public final class CryptConfig {
  /** Length of the GCM IV and tag as stored in blobs and key files. */
  public static final int IV_LENGTH = 16;

  public static final int TAG_LENGTH = 16;

  private static final byte[] FINGERPRINT_INPUT =
      sha256("Proxmox Backup Encryption Key Fingerprint".getBytes(StandardCharsets.US_ASCII));

  private final SecretKeySpec encKey;
  private final byte[] rawKey;

  /**
   * Gives libcrypto, or null for the JDK's AES-GCM; asked at each use, so an unused key loads none.
   */
  private final Supplier<OpenSslGcm> openssl;

  private final byte[] idKey;
  private final SecretKeySpec macKey;
  private final byte[] fingerprint;

  /** Builds the keys from a raw 32-byte encryption key (the array is copied). */
  public CryptConfig(byte[] rawKey) {
    this(rawKey, () -> Gcm.OPENSSL);
  }

  /**
   * As {@link #CryptConfig(byte[])}, with the AES-GCM {@code openssl} gives (the JDK's if null).
   */
  CryptConfig(byte[] rawKey, Supplier<OpenSslGcm> openssl) {
    if (rawKey.length != 32) {
      throw new IllegalArgumentException("an encryption key has 32 bytes, not " + rawKey.length);
    }
    this.rawKey = rawKey.clone();
    this.openssl = openssl;
    this.encKey = new SecretKeySpec(this.rawKey, "AES");
    this.idKey = pbkdf2Sha256(rawKey, "_id_key".getBytes(StandardCharsets.US_ASCII), 10);
    this.macKey = new SecretKeySpec(idKey, "HmacSHA256");
    this.fingerprint = digest(FINGERPRINT_INPUT, 0, FINGERPRINT_INPUT.length);
  }

  /** PBKDF2-HMAC-SHA256 over raw password bytes (the JCA variant takes chars only). */
  static byte[] pbkdf2Sha256(byte[] password, byte[] salt, int iterations) {
    PKCS5S2ParametersGenerator gen = new PKCS5S2ParametersGenerator(new SHA256Digest());
    gen.init(password, salt, iterations);
    return ((KeyParameter) gen.generateDerivedParameters(256)).getKey();
  }

  /** Chunk digest of encrypted data: SHA-256(data || id_key). */
  public byte[] digest(byte[] data, int offset, int length) {
    MessageDigest md = sha256();
    md.update(data, offset, length);
    md.update(idKey);
    return md.digest();
  }

  /** HMAC-SHA256 keyed with the id key (manifest signatures). */
  public byte[] authTag(byte[] data) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(macKey);
      return mac.doFinal(data);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HmacSHA256 unavailable", e);
    }
  }

  /** The full 32-byte key fingerprint. */
  public byte[] fingerprint() {
    return fingerprint.clone();
  }

  /** The key fingerprint as shown to users: first 8 bytes, colon-separated hex. */
  public String shortFingerprint() {
    return formatFingerprint(fingerprint, 8);
  }

  /** Colon-separated hex of the first {@code n} bytes. */
  public static String formatFingerprint(byte[] fp, int n) {
    StringBuilder sb = new StringBuilder(n * 3);
    for (int i = 0; i < n; i++) {
      if (i > 0) {
        sb.append(':');
      }
      sb.append(Character.forDigit((fp[i] >> 4) & 0xf, 16))
          .append(Character.forDigit(fp[i] & 0xf, 16));
    }
    return sb.toString();
  }

  /** Encrypts {@code plain}: returns tag(16) || ciphertext, the order in which blobs store them. */
  public byte[] encrypt(byte[] plain, int offset, int length, byte[] iv) {
    if (iv.length != IV_LENGTH) {
      throw new IllegalArgumentException(
          "a blob's IV has " + IV_LENGTH + " bytes, not " + iv.length);
    }
    OpenSslGcm lib = openssl.get();
    if (lib != null) {
      byte[] res = new byte[TAG_LENGTH + length];
      lib.encrypt(rawKey, iv, 0, plain, offset, length, res, TAG_LENGTH, res, 0);
      return res;
    }
    try {
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      c.init(Cipher.ENCRYPT_MODE, encKey, new GCMParameterSpec(TAG_LENGTH * 8, iv));
      byte[] out = c.doFinal(plain, offset, length); // ciphertext || tag
      byte[] res = new byte[out.length];
      int ctLen = out.length - TAG_LENGTH;
      System.arraycopy(out, ctLen, res, 0, TAG_LENGTH);
      System.arraycopy(out, 0, res, TAG_LENGTH, ctLen);
      return res;
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("AES-GCM unavailable", e);
    }
  }

  /**
   * Decrypts and authenticates. {@code ct} holds the ciphertext at {@code ctOff..ctOff+ctLen};
   * {@code tag} the 16-byte tag at {@code tagOff}.
   *
   * @throws AEADBadTagException when the data or tag was altered, or the key is wrong
   */
  public byte[] decrypt(byte[] iv, byte[] tag, int tagOff, byte[] ct, int ctOff, int ctLen)
      throws AEADBadTagException {
    byte[] in = new byte[ctLen + TAG_LENGTH];
    System.arraycopy(ct, ctOff, in, 0, ctLen);
    byte[] out = new byte[ctLen];
    decrypt(iv, 0, tag, tagOff, in, 0, ctLen, out, 0);
    return out;
  }

  /**
   * Decrypts and authenticates {@code ctLen} bytes of {@code buf} at {@code ctOff} into {@code out}
   * at {@code outOff}; {@code tag} holds the 16-byte tag at {@code tagOff}, and {@code iv} the
   * 16-byte IV at {@code ivOff}. The JCA wants the tag right behind the ciphertext: it is copied to
   * {@code buf[ctOff + ctLen, +16)}, which must be free for it (whichever implementation runs), so
   * that the ciphertext itself is never copied. {@code out} must not overlap the ciphertext.
   *
   * @throws AEADBadTagException when the data or tag was altered, or the key is wrong
   */
  public void decrypt(
      byte[] iv,
      int ivOff,
      byte[] tag,
      int tagOff,
      byte[] buf,
      int ctOff,
      int ctLen,
      byte[] out,
      int outOff)
      throws AEADBadTagException {
    if (buf.length - ctOff - ctLen < TAG_LENGTH) {
      throw new IllegalArgumentException("no room for the tag behind the ciphertext");
    }
    OpenSslGcm lib = openssl.get();
    if (lib != null) {
      if (!lib.decrypt(rawKey, iv, ivOff, tag, tagOff, buf, ctOff, ctLen, out, outOff)) {
        throw new AEADBadTagException("Tag mismatch");
      }
      return;
    }
    System.arraycopy(tag, tagOff, buf, ctOff + ctLen, TAG_LENGTH);
    try {
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      c.init(
          Cipher.DECRYPT_MODE, encKey, new GCMParameterSpec(TAG_LENGTH * 8, iv, ivOff, IV_LENGTH));
      c.doFinal(buf, ctOff, ctLen + TAG_LENGTH, out, outOff);
    } catch (AEADBadTagException e) {
      throw e;
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("AES-GCM failed", e);
    }
  }

  /**
   * What encrypts and decrypts blobs in this process: {@code "OpenSSL 3.0.17 1 Jul 2025
   * (libcrypto.so.3)"}, or the JDK with the reason libcrypto is not used.
   */
  public static String gcmImplementation() {
    return Gcm.DESCRIPTION;
  }

  /** The process's choice of AES-GCM, made when a key first encrypts or decrypts. */
  private static final class Gcm {
    static final OpenSslGcm OPENSSL;
    static final String DESCRIPTION;

    static {
      OpenSslGcm gcm = null;
      String why = "THAW_GCM=jdk";
      if (!"jdk".equals(System.getenv("THAW_GCM"))) {
        try {
          gcm = OpenSslGcm.load();
        } catch (IOException e) {
          why = e.getMessage();
        }
      }
      OPENSSL = gcm;
      DESCRIPTION =
          gcm != null
              ? gcm.name()
              : "the JDK's (Java "
                  + Runtime.version().feature()
                  + "; libcrypto not used: "
                  + why
                  + ")";
    }
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }

  static byte[] sha256(byte[] data) {
    return sha256().digest(data);
  }

  @Override
  public String toString() {
    return "CryptConfig[fingerprint " + shortFingerprint() + "]";
  }

  /** Two configs are equal when their keys are (compared via the fingerprint). */
  @Override
  public boolean equals(Object o) {
    return o instanceof CryptConfig c && Arrays.equals(c.fingerprint, fingerprint);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(fingerprint);
  }
}
