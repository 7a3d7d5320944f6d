package dev.thaw.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import javax.crypto.AEADBadTagException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * libcrypto's AES-GCM against the JDK's: what one encrypts the other decrypts, byte for byte, and
 * every alteration is refused. Debian always has libcrypto (libssl3), so its absence fails here.
 */
class OpenSslGcmTest {
  private static OpenSslGcm gcm;

  @BeforeAll
  static void load() throws Exception {
    gcm = OpenSslGcm.load();
  }

  /** A blob as PBS stores one: the JDK's tag || ciphertext under a random key and 16-byte IV. */
  private record Sealed(byte[] key, byte[] iv, byte[] plain, byte[] tagCt) {
    static Sealed of(Random r, int length) {
      byte[] key = new byte[32];
      byte[] iv = new byte[16];
      byte[] plain = new byte[length];
      r.nextBytes(key);
      r.nextBytes(iv);
      r.nextBytes(plain);
      return new Sealed(
          key, iv, plain, new CryptConfig(key, () -> null).encrypt(plain, 0, length, iv));
    }

    boolean open(OpenSslGcm g, byte[] out, int outOff) {
      return g.decrypt(key, iv, 0, tagCt, 0, tagCt, 16, plain.length, out, outOff);
    }
  }

  @Test
  void decryptsWhatTheJdkEncryptsAtEveryLengthAndOffset() {
    Random r = new Random(7);
    for (int length : new int[] {0, 1, 15, 16, 17, 4095, 65_537, (4 << 20) + 3}) {
      Sealed s = Sealed.of(r, length);
      byte[] out = new byte[length + 11];
      assertTrue(s.open(gcm, out, 5), "length " + length);
      assertArrayEquals(s.plain, Arrays.copyOfRange(out, 5, 5 + length), "length " + length);
      assertEquals(0, out[4]);
      assertEquals(0, out[5 + length], "wrote past the output range");
    }
  }

  @Test
  void encryptsByteForByteAsTheJdkDoes() {
    Random r = new Random(12);
    for (int length : new int[] {0, 1, 16, 17, 65_537, (4 << 20) + 3}) {
      Sealed s = Sealed.of(r, length);
      byte[] in = new byte[length + 7];
      System.arraycopy(s.plain, 0, in, 7, length);
      byte[] out = new byte[16 + length + 1];
      gcm.encrypt(s.key, s.iv, 0, in, 7, length, out, 16, out, 0);
      assertArrayEquals(s.tagCt, Arrays.copyOf(out, 16 + length), "length " + length);
      assertEquals(0, out[16 + length], "wrote past the output range");
      assertArrayEquals(
          s.tagCt, new CryptConfig(s.key, () -> gcm).encrypt(s.plain, 0, length, s.iv));
    }
  }

  @Test
  void refusesAnyAlteredBitOfCiphertextTagOrIvAndAWrongKey() {
    Random r = new Random(8);
    Sealed s = Sealed.of(r, 1000);
    byte[] out = new byte[1000];
    for (int bit : new int[] {0, 7, 127, 128, 128 + 8 * 999 + 7}) {
      byte[] altered = s.tagCt.clone();
      altered[bit / 8] ^= (byte) (1 << (bit % 8));
      assertFalse(gcm.decrypt(s.key, s.iv, 0, altered, 0, altered, 16, 1000, out, 0), "bit " + bit);
    }
    byte[] iv = s.iv.clone();
    iv[15] ^= 1; // the IV's last four bytes matter too: a 16-byte IV is hashed, not used as is
    assertFalse(gcm.decrypt(s.key, iv, 0, s.tagCt, 0, s.tagCt, 16, 1000, out, 0));
    byte[] key = s.key.clone();
    key[31] ^= 1;
    assertFalse(gcm.decrypt(key, s.iv, 0, s.tagCt, 0, s.tagCt, 16, 1000, out, 0));
    assertTrue(s.open(gcm, out, 0));
  }

  @Test
  void rangesOutsideTheArraysNeverReachLibcrypto() {
    Sealed s = Sealed.of(new Random(9), 64);
    byte[] out = new byte[64];
    byte[] ct = s.tagCt;
    assertThrows(
        IndexOutOfBoundsException.class,
        () -> gcm.decrypt(s.key, s.iv, 0, ct, 0, ct, 16, 64, new byte[63], 0));
    assertThrows(
        IndexOutOfBoundsException.class,
        () -> gcm.decrypt(s.key, s.iv, 0, ct, 0, ct, 17, 64, out, 0));
    assertThrows(
        IndexOutOfBoundsException.class,
        () -> gcm.decrypt(s.key, s.iv, 1, ct, 0, ct, 16, 64, out, 0));
    assertThrows(
        IndexOutOfBoundsException.class,
        () -> gcm.decrypt(s.key, s.iv, 0, ct, ct.length - 15, ct, 16, 64, out, 0));
    assertThrows(
        IndexOutOfBoundsException.class,
        () -> gcm.decrypt(s.key, s.iv, 0, ct, 0, ct, 16, -1, out, 0));
    assertThrows(
        IndexOutOfBoundsException.class,
        () -> gcm.decrypt(new byte[16], s.iv, 0, ct, 0, ct, 16, 64, out, 0));
  }

  @Test
  void threadsDecryptAtOnceWithoutSharingState() throws Exception {
    List<Sealed> blobs = new ArrayList<>();
    Random r = new Random(10);
    for (int i = 0; i < 8; i++) {
      blobs.add(Sealed.of(r, (1 << 20) + i));
    }
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<Boolean>> results = new ArrayList<>();
      for (int round = 0; round < 4; round++) {
        for (Sealed s : blobs) {
          results.add(
              pool.submit(
                  () -> {
                    byte[] out = new byte[s.plain.length];
                    return s.open(gcm, out, 0) && Arrays.equals(out, s.plain);
                  }));
        }
      }
      for (Future<Boolean> f : results) {
        assertTrue(f.get());
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void cryptConfigGivesTheSameAnswersWithEitherImplementation() throws Exception {
    Sealed s = Sealed.of(new Random(11), 5000);
    for (OpenSslGcm g : Arrays.asList(gcm, null)) {
      CryptConfig c = new CryptConfig(s.key, () -> g);
      byte[] buf = Arrays.copyOf(s.tagCt, s.tagCt.length + 16);
      byte[] out = new byte[5000];
      c.decrypt(s.iv, 0, s.tagCt, 0, buf, 16, 5000, out, 0);
      assertArrayEquals(s.plain, out);
      buf[100] ^= 1;
      assertThrows(
          AEADBadTagException.class, () -> c.decrypt(s.iv, 0, s.tagCt, 0, buf, 16, 5000, out, 0));
    }
  }

  @Test
  void aKeyDecryptsThroughTheImplementationItIsGiven() throws Exception {
    // only the JDK's path needs the tag behind the ciphertext: the room left for it there shows
    // which implementation ran
    Sealed s = Sealed.of(new Random(14), 3000);
    byte[] out = new byte[3000];
    byte[] viaLib = Arrays.copyOf(s.tagCt, s.tagCt.length + 16);
    Arrays.fill(viaLib, s.tagCt.length, viaLib.length, (byte) 0x5a);
    new CryptConfig(s.key, () -> gcm).decrypt(s.iv, 0, s.tagCt, 0, viaLib, 16, 3000, out, 0);
    assertArrayEquals(s.plain, out);
    byte[] untouched = new byte[16];
    Arrays.fill(untouched, (byte) 0x5a);
    assertArrayEquals(
        untouched,
        Arrays.copyOfRange(viaLib, s.tagCt.length, viaLib.length),
        "a key given libcrypto decrypted through the JDK");
    byte[] viaJdk = viaLib.clone();
    new CryptConfig(s.key, () -> null).decrypt(s.iv, 0, s.tagCt, 0, viaJdk, 16, 3000, out, 0);
    assertArrayEquals(s.plain, out);
    assertArrayEquals(
        Arrays.copyOf(s.tagCt, 16),
        Arrays.copyOfRange(viaJdk, s.tagCt.length, viaJdk.length),
        "a key given no libcrypto did not decrypt through the JDK");
  }

  @Test
  void aKeyAsksForLibcryptoOnlyWhenItEncryptsOrDecrypts() throws Exception {
    Sealed s = Sealed.of(new Random(13), 100);
    int[] asked = {0};
    CryptConfig c =
        new CryptConfig(
            s.key,
            () -> {
              asked[0]++;
              return gcm;
            });
    c.digest(s.plain, 0, 100);
    c.authTag(s.plain);
    c.fingerprint();
    assertEquals(0, asked[0], "a key that only digests, signs or names itself loads no libcrypto");
    byte[] out = new byte[100];
    c.decrypt(s.iv, 0, s.tagCt, 0, Arrays.copyOf(s.tagCt, s.tagCt.length + 16), 16, 100, out, 0);
    assertArrayEquals(s.plain, out);
    assertEquals(1, asked[0]);
  }

  @Test
  void theProcessUsesLibcryptoAndNamesIt() {
    // THAW_GCM=jdk is the only way to turn it off; tests run without it
    assertTrue(
        CryptConfig.gcmImplementation().contains("(libcrypto.so."),
        CryptConfig.gcmImplementation());
  }
}
