package dev.thaw.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.X509ExtendedTrustManager;
import okhttp3.tls.HeldCertificate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PbsTrustTest {
  @TempDir Path dir;

  private final HeldCertificate ca = new HeldCertificate.Builder().certificateAuthority(0).build();
  private final HeldCertificate signed =
      new HeldCertificate.Builder().commonName("pbs").signedBy(ca).build();
  private final HeldCertificate selfSigned =
      new HeldCertificate.Builder().commonName("pbs").build();

  /** Chain validation against {@link #ca}, counting how often it is set up. */
  private PbsTrust.ChainValidation counted(AtomicInteger loads) {
    return () -> {
      loads.incrementAndGet();
      Path pem = Files.createTempFile(dir, "ca", ".pem");
      Files.writeString(pem, ca.certificatePem());
      return PbsTrust.chainValidation(pem);
    };
  }

  private static X509Certificate[] chainOf(HeldCertificate c) {
    return new X509Certificate[] {c.certificate()};
  }

  @Test
  void aMatchingFingerprintIsTrustedWithoutReadingAnyCa() throws Exception {
    AtomicInteger loads = new AtomicInteger();
    String fp = PbsTrust.fingerprint(selfSigned.certificate());
    PbsTrust trust = new PbsTrust(counted(loads), fp);
    trust.checkServerTrusted(chainOf(selfSigned), "ECDHE_ECDSA");
    trust.checkServerTrusted(chainOf(selfSigned), "ECDHE_ECDSA");
    assertEquals(0, loads.get(), "a pinned server needs no CA certificates");
  }

  @Test
  void aCertificateTheCasValidateIsTrustedWhateverTheFingerprint() throws Exception {
    AtomicInteger loads = new AtomicInteger();
    PbsTrust trust = new PbsTrust(counted(loads), "00:11");
    trust.checkServerTrusted(chainOf(signed), "ECDHE_ECDSA");
    trust.checkServerTrusted(chainOf(signed), "ECDHE_ECDSA");
    assertEquals(1, loads.get(), "the CA certificates are read once");
    new PbsTrust(counted(loads), null).checkServerTrusted(chainOf(signed), "ECDHE_ECDSA");
  }

  @Test
  void anotherCertificateIsRefusedWithTheServersFingerprint() throws Exception {
    String fp = PbsTrust.fingerprint(selfSigned.certificate());
    PbsTrust.Untrusted pinned =
        assertThrows(
            PbsTrust.Untrusted.class,
            () ->
                new PbsTrust(counted(new AtomicInteger()), "aa" + fp.substring(2))
                    .checkServerTrusted(chainOf(selfSigned), "ECDHE_ECDSA"));
    assertEquals(fp, pinned.fingerprint());
    assertTrue(pinned.getMessage().contains("does not match PBS_FINGERPRINT"), pinned.getMessage());

    PbsTrust.Untrusted unpinned =
        assertThrows(
            PbsTrust.Untrusted.class,
            () ->
                new PbsTrust(counted(new AtomicInteger()), null)
                    .checkServerTrusted(chainOf(selfSigned), "ECDHE_ECDSA"));
    assertEquals(fp, unpinned.fingerprint());
    assertTrue(unpinned.getMessage().contains("not trusted"), unpinned.getMessage());
  }

  @Test
  void caCertificatesThatCannotBeReadRefuseAnUnpinnedCertificate() {
    PbsTrust trust =
        new PbsTrust(
            () -> {
              throw new IOException("no such file");
            },
            null);
    CertificateException e =
        assertThrows(
            CertificateException.class,
            () -> trust.checkServerTrusted(chainOf(signed), "ECDHE_ECDSA"));
    assertTrue(e.getMessage().contains("no such file"), e.getMessage());
    assertEquals(0, trust.getAcceptedIssuers().length);
  }

  @Test
  void aChainValidationThatFailsToLoadIsTriedAgainNotCached() throws Exception {
    AtomicInteger calls = new AtomicInteger();
    X509ExtendedTrustManager good = counted(new AtomicInteger()).load();
    PbsTrust trust =
        new PbsTrust(
            () -> {
              if (calls.incrementAndGet() == 1) {
                throw new IOException("busy");
              }
              return good;
            },
            null);
    assertThrows(
        CertificateException.class, () -> trust.checkServerTrusted(chainOf(signed), "ECDHE_ECDSA"));
    trust.checkServerTrusted(chainOf(signed), "ECDHE_ECDSA");
    assertEquals(2, calls.get());
  }
}
