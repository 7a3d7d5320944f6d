package dev.thaw.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.Base64;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;

class KeyFileTest {
  private static final byte[] PASS = "correct horse".getBytes(StandardCharsets.UTF_8);

  private static byte[] rawKey() {
    byte[] k = new byte[32];
    for (int i = 0; i < 32; i++) {
      k[i] = (byte) i;
    }
    return k;
  }

  @Test
  void scryptKeyFileRoundTrips() throws Exception {
    KeyFile kf = KeyFile.wrap(rawKey(), Kdf.SCRYPT, PASS, new SecureRandom(), 1700000000L);
    KeyFile back = KeyFile.parse(kf.toJson());
    assertEquals(Kdf.SCRYPT, back.kdf());
    CryptConfig c = back.open(() -> PASS);
    assertEquals(new CryptConfig(rawKey()), c);
    assertEquals("0e:ab:d4:46:0b:6e:b9:ca", c.shortFingerprint());
    String text = new String(kf.toJson(), StandardCharsets.UTF_8);
    assertTrue(text.contains("\"Scrypt\"") && text.contains("\"n\" : 65536"), text);
    assertTrue(text.contains("2023-11-14T22:13:20Z"), text);
    // the raw key must not appear in the file
    assertFalse(text.contains(Base64.getEncoder().encodeToString(rawKey())));
  }

  @Test
  void wrongPassphraseIsRefusedWithHintButNoSecrets() throws Exception {
    KeyFile kf = KeyFile.wrap(rawKey(), Kdf.SCRYPT, PASS, new SecureRandom(), 0);
    ObjectNode obj = (ObjectNode) new ObjectMapper().readTree(kf.toJson());
    obj.put("hint", "the horse");
    KeyFile withHint = KeyFile.parse(new ObjectMapper().writeValueAsBytes(obj));
    Exception e =
        assertThrows(
            java.io.IOException.class,
            () -> withHint.open(() -> "wrong passphrase".getBytes(StandardCharsets.UTF_8)));
    assertTrue(
        e.getMessage().contains("wrong passphrase") && e.getMessage().contains("the horse"),
        e.getMessage());
    assertFalse(e.getMessage().contains("correct horse"));
    assertThrows(
        java.io.IOException.class, () -> kf.open(() -> "abc".getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void unprotectedKeyFile() throws Exception {
    KeyFile kf = KeyFile.create(Kdf.NONE, null, new SecureRandom());
    KeyFile back = KeyFile.parse(kf.toJson());
    assertEquals(Kdf.NONE, back.kdf());
    back.open(
        () -> {
          throw new AssertionError("no passphrase needed");
        });
  }

  @Test
  void readsPbkdf2KeyFiles() throws Exception {
    byte[] salt = new byte[32];
    salt[3] = 9;
    byte[] derived = CryptConfig.pbkdf2Sha256(PASS, salt, 1000);
    byte[] iv = new byte[16];
    iv[0] = 5;
    Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
    c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(derived, "AES"), new GCMParameterSpec(128, iv));
    byte[] out = c.doFinal(rawKey());
    byte[] data = new byte[64];
    System.arraycopy(iv, 0, data, 0, 16);
    System.arraycopy(out, 32, data, 16, 16);
    System.arraycopy(out, 0, data, 32, 32);
    String json =
        "{\"kdf\":{\"PBKDF2\":{\"iter\":1000,\"salt\":\""
            + Base64.getEncoder().encodeToString(salt)
            + "\"}},\"created\":\"2020-01-01T00:00:00Z\",\"modified\":\"2020-01-01T00:00:00Z\",\"data\":\""
            + Base64.getEncoder().encodeToString(data)
            + "\"}";
    CryptConfig cfg = KeyFile.parse(json.getBytes(StandardCharsets.UTF_8)).open(() -> PASS);
    assertArrayEquals(new CryptConfig(rawKey()).fingerprint(), cfg.fingerprint());
  }

  @Test
  void fingerprintMismatchIsDetected() throws Exception {
    String json =
        "{\"kdf\":null,\"created\":\"2020-01-01T00:00:00Z\",\"modified\":\"2020-01-01T00:00:00Z\","
            + "\"data\":\""
            + Base64.getEncoder().encodeToString(rawKey())
            + "\",\"fingerprint\":\""
            + CryptConfig.formatFingerprint(new byte[32], 32)
            + "\"}";
    Exception e =
        assertThrows(
            java.io.IOException.class,
            () -> KeyFile.parse(json.getBytes(StandardCharsets.UTF_8)).open(() -> null));
    assertTrue(e.getMessage().contains("fingerprint"), e.getMessage());
  }

  @Test
  void garbageIsNotAKeyFile() {
    assertThrows(
        java.io.IOException.class, () -> KeyFile.parse("{}".getBytes(StandardCharsets.UTF_8)));
    assertThrows(
        java.io.IOException.class, () -> KeyFile.parse("nope".getBytes(StandardCharsets.UTF_8)));
    assertThrows(
        java.io.IOException.class,
        () ->
            KeyFile.parse(
                "{\"kdf\":{\"Argon\":{}},\"data\":\"\"}".getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void everyNewKeyIsRandomAndNeverAllZeros() throws Exception {
    java.util.Set<String> seen = new java.util.HashSet<>();
    String zero = new CryptConfig(new byte[32]).shortFingerprint();
    for (int i = 0; i < 50; i++) {
      String fp =
          KeyFile.create(Kdf.NONE, null, new SecureRandom()).open(() -> null).shortFingerprint();
      assertFalse(fp.equals(zero), "an all-zero key");
      assertTrue(seen.add(fp), "the same key twice: " + fp);
    }
  }

  @Test
  void eachWrapHasASaltAndNonceOfItsOwnAndTheShortestPassphraseWorks() throws Exception {
    byte[] shortest = "12345".getBytes(StandardCharsets.UTF_8);
    assertThrows(
        IllegalArgumentException.class,
        () ->
            KeyFile.wrap(
                rawKey(),
                Kdf.SCRYPT,
                "1234".getBytes(StandardCharsets.UTF_8),
                new SecureRandom(),
                0));
    KeyFile a = KeyFile.wrap(rawKey(), Kdf.SCRYPT, shortest, new SecureRandom(), 0);
    KeyFile b = KeyFile.wrap(rawKey(), Kdf.SCRYPT, shortest, new SecureRandom(), 0);
    ObjectMapper m = new ObjectMapper();
    String saltA = m.readTree(a.toJson()).path("kdf").path("Scrypt").path("salt").asText();
    String saltB = m.readTree(b.toJson()).path("kdf").path("Scrypt").path("salt").asText();
    byte[] dataA = Base64.getDecoder().decode(m.readTree(a.toJson()).path("data").asText());
    byte[] dataB = Base64.getDecoder().decode(m.readTree(b.toJson()).path("data").asText());
    assertFalse(saltA.equals(saltB), "one salt for two key files");
    assertFalse(
        java.util.Arrays.equals(new byte[32], Base64.getDecoder().decode(saltA)),
        "an all-zero salt");
    assertFalse(
        java.util.Arrays.equals(
            java.util.Arrays.copyOf(dataA, 16), java.util.Arrays.copyOf(dataB, 16)),
        "one GCM nonce for two key files");
    assertFalse(
        java.util.Arrays.equals(new byte[16], java.util.Arrays.copyOf(dataA, 16)),
        "an all-zero nonce");
    assertEquals(new CryptConfig(rawKey()), a.open(() -> shortest));
  }

  /**
   * A key file with the scrypt parameters {@code n}, {@code r} and {@code p}; its data is not
   * theirs.
   */
  private static KeyFile scrypt(long n, long r, long p) throws Exception {
    String json =
        "{\"kdf\":{\"Scrypt\":{\"n\":"
            + n
            + ",\"r\":"
            + r
            + ",\"p\":"
            + p
            + ",\"salt\":\"AAAA\"}},"
            + "\"data\":\""
            + Base64.getEncoder().encodeToString(new byte[64])
            + "\"}";
    return KeyFile.parse(json.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void scryptParametersOutsideWhatProxmoxUsesAreRefusedBeforeAnyWork() throws Exception {
    long[][] unusable = {
      {1, 1, 1}, {6, 1, 1}, {2, 0, 1}, {2, 1, 0}, {1 << 20, 8, 2}, {1L << 32, 1, 1}
    };
    for (long[] u : unusable) {
      Exception e =
          assertThrows(java.io.IOException.class, () -> scrypt(u[0], u[1], u[2]).open(() -> PASS));
      assertTrue(
          e.getMessage().contains("unusable scrypt parameters"),
          java.util.Arrays.toString(u) + ": " + e.getMessage());
    }
    long[][] usable = {{2, 1, 1}, {4, 1, 1}, {1 << 10, 8, 1}};
    for (long[] u : usable) { // derived, then the (zero) data does not authenticate
      Exception e =
          assertThrows(java.io.IOException.class, () -> scrypt(u[0], u[1], u[2]).open(() -> PASS));
      assertTrue(
          e.getMessage().contains("wrong passphrase"),
          java.util.Arrays.toString(u) + ": " + e.getMessage());
    }
  }

  @Test
  void anUnknownKdfIsNamedShortened() {
    String kdf = "{\"Argon2\":{\"salt\":\"" + "x".repeat(100) + "\"}}";
    Exception e =
        assertThrows(
            java.io.IOException.class,
            () ->
                KeyFile.parse(
                    ("{\"kdf\":" + kdf + ",\"data\":\"\"}").getBytes(StandardCharsets.UTF_8)));
    assertTrue(
        e.getMessage().contains(kdf.substring(0, 60) + "...")
            && !e.getMessage().contains(kdf.substring(0, 61)),
        e.getMessage());
    String small =
        "{\"Argon2\":{\"salt\":\"" + "x".repeat(38) + "\"}}"; // 60 characters: shown whole
    assertEquals(60, small.length());
    Exception e2 =
        assertThrows(
            java.io.IOException.class,
            () ->
                KeyFile.parse(
                    ("{\"kdf\":" + small + ",\"data\":\"\"}").getBytes(StandardCharsets.UTF_8)));
    assertTrue(e2.getMessage().contains(small + " ("), e2.getMessage());
  }
}
