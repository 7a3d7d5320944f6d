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
}
