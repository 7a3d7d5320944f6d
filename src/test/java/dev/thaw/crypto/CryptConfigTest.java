package dev.thaw.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import javax.crypto.AEADBadTagException;
import org.junit.jupiter.api.Test;

class CryptConfigTest {
  @Test
  void encryptDecryptRoundTripAndTamper() throws Exception {
    CryptConfig c = new CryptConfig(new byte[32]);
    byte[] iv = new byte[16];
    iv[5] = 1;
    byte[] plain = "some data to protect".getBytes(StandardCharsets.UTF_8);
    byte[] tagCt = c.encrypt(plain, 0, plain.length, iv);
    assertArrayEquals(plain, c.decrypt(iv, tagCt, 0, tagCt, 16, tagCt.length - 16));
    tagCt[20] ^= 1;
    assertThrows(
        AEADBadTagException.class, () -> c.decrypt(iv, tagCt, 0, tagCt, 16, tagCt.length - 16));
  }

  @Test
  void toStringShowsNoKeyMaterial() {
    byte[] k = new byte[32];
    k[0] = 0x5a;
    String s = new CryptConfig(k).toString();
    assertFalse(s.contains("5a00"));
  }

  @Test
  void decryptsInPlaceWithExactlyRoomForTheTagAndRefusesLess() throws Exception {
    CryptConfig c = new CryptConfig(new byte[32]);
    byte[] iv = new byte[16];
    byte[] plain = "in place".getBytes(StandardCharsets.UTF_8);
    byte[] tagCt = c.encrypt(plain, 0, plain.length, iv);
    int ct = tagCt.length - 16;
    byte[] buf = new byte[5 + ct + 16]; // 5 bytes before the ciphertext, the tag's room behind it
    System.arraycopy(tagCt, 16, buf, 5, ct);
    byte[] out = new byte[ct];
    c.decrypt(iv, 0, tagCt, 0, buf, 5, ct, out, 0);
    assertArrayEquals(plain, out);
    byte[] tight = java.util.Arrays.copyOf(buf, buf.length - 1);
    assertThrows(
        IllegalArgumentException.class, () -> c.decrypt(iv, 0, tagCt, 0, tight, 5, ct, out, 0));
  }

  @Test
  void configsAreEqualByKeyAndShowTheirFingerprint() {
    byte[] k = new byte[32];
    CryptConfig a = new CryptConfig(k);
    k[31] = 1;
    CryptConfig b = new CryptConfig(k);
    org.junit.jupiter.api.Assertions.assertEquals(a, new CryptConfig(new byte[32]));
    org.junit.jupiter.api.Assertions.assertEquals(
        a.hashCode(), new CryptConfig(new byte[32]).hashCode());
    org.junit.jupiter.api.Assertions.assertNotEquals(a, b);
    org.junit.jupiter.api.Assertions.assertNotEquals(a.hashCode(), b.hashCode());
    org.junit.jupiter.api.Assertions.assertTrue(
        a.toString().contains(a.shortFingerprint()), a.toString());
    org.junit.jupiter.api.Assertions.assertEquals(
        23, a.shortFingerprint().length()); // 8 bytes, colon-separated
  }
}
