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
}
