package dev.thaw.store;

import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.HexFormat;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * Trusts a Proxmox Backup Server's certificate the way the PBS client does: a certificate whose
 * leaf's SHA-256 fingerprint equals the expected one is trusted (PBS installs a self-signed
 * certificate and shows its fingerprint), and so is one that passes normal chain and host-name
 * validation. The fingerprint is compared first, so that a pinned server never costs reading the
 * system's CA certificates (about 0.1 s at start-up); the outcome is the same in either order. A
 * refused certificate fails with {@link Untrusted}, which carries the server's fingerprint so that
 * a message can show it. Thread-safe.
 */
final class PbsTrust extends X509ExtendedTrustManager {
  /** The server's certificate was refused; {@link #fingerprint()} is the server's. */
  static final class Untrusted extends CertificateException {
    private static final long serialVersionUID = 1L;
    private final String fingerprint;

    Untrusted(String message, String fingerprint, Throwable cause) {
      super(message, cause);
      this.fingerprint = fingerprint;
    }

    String fingerprint() {
      return fingerprint;
    }
  }

  /**
   * Sets up chain validation; called when a certificate first needs it, and again only after a call
   * that failed.
   */
  interface ChainValidation {
    X509ExtendedTrustManager load() throws GeneralSecurityException, IOException;
  }

  private final ChainValidation source;
  private final String expected;
  private X509ExtendedTrustManager chain; // guarded by this

  /**
   * @param chain the validation for a certificate the fingerprint does not match (the system's CAs,
   *     or those of --ca-file)
   * @param expected the fingerprint to accept, or null
   */
  PbsTrust(ChainValidation chain, String expected) {
    this.source = chain;
    this.expected = expected;
  }

  private synchronized X509ExtendedTrustManager chain() throws CertificateException {
    if (chain == null) {
      try {
        chain = source.load();
      } catch (GeneralSecurityException | IOException e) {
        throw new CertificateException("cannot read the CA certificates to trust: " + e, e);
      }
    }
    return chain;
  }

  /**
   * The JDK's default validation against the CA certificates of a PEM file, or the system's CAs if
   * {@code caFile} is null.
   */
  static X509ExtendedTrustManager chainValidation(Path caFile)
      throws GeneralSecurityException, IOException {
    TrustManagerFactory tmf =
        TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    if (caFile == null) {
      tmf.init((KeyStore) null);
    } else {
      KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
      ks.load(null, null);
      int i = 0;
      try (InputStream in = Files.newInputStream(caFile)) {
        for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
          ks.setCertificateEntry("ca" + i++, c);
        }
      }
      if (i == 0) {
        throw new GeneralSecurityException("no PEM certificate in it");
      }
      tmf.init(ks);
    }
    for (TrustManager tm : tmf.getTrustManagers()) {
      if (tm instanceof X509ExtendedTrustManager x) {
        return x;
      }
    }
    throw new GeneralSecurityException("no X.509 trust manager");
  }

  /** SHA-256 of the DER certificate as PBS writes it: lower-case hex pairs joined by ':'. */
  static String fingerprint(X509Certificate cert) throws CertificateException {
    byte[] d;
    try {
      d = MessageDigest.getInstance("SHA-256").digest(cert.getEncoded());
    } catch (NoSuchAlgorithmException e) {
      throw new CertificateException(e);
    }
    return HexFormat.ofDelimiter(":").formatHex(d);
  }

  /** One chain validation. */
  private interface Check {
    void run() throws CertificateException;
  }

  @Override
  public void checkServerTrusted(X509Certificate[] certs, String authType, SSLEngine engine)
      throws CertificateException {
    check(certs, () -> chain().checkServerTrusted(certs, authType, engine));
  }

  @Override
  public void checkServerTrusted(X509Certificate[] certs, String authType, Socket socket)
      throws CertificateException {
    check(certs, () -> chain().checkServerTrusted(certs, authType, socket));
  }

  @Override
  public void checkServerTrusted(X509Certificate[] certs, String authType)
      throws CertificateException {
    check(certs, () -> chain().checkServerTrusted(certs, authType));
  }

  private void check(X509Certificate[] certs, Check validation) throws CertificateException {
    String fp = certs == null || certs.length == 0 ? null : fingerprint(certs[0]);
    if (fp != null && fp.equals(expected)) {
      return;
    }
    try {
      validation.run();
    } catch (CertificateException e) {
      refuse(fp, e);
    }
  }

  private void refuse(String fp, CertificateException failed) throws CertificateException {
    if (fp == null) {
      throw failed;
    }
    String message =
        expected != null
            ? "the server's certificate fingerprint "
                + fp
                + " does not match PBS_FINGERPRINT "
                + expected
                + " (if the server's certificate was renewed, compare the new fingerprint with the one"
                + " the PBS web interface shows and set PBS_FINGERPRINT to it)"
            : "the server's certificate is not trusted ("
                + reason(failed)
                + "); if it is your"
                + " PBS's own certificate, compare its fingerprint "
                + fp
                + " with the one the PBS web"
                + " interface shows and set PBS_FINGERPRINT to it";
    throw new Untrusted(message, fp, failed);
  }

  private static String reason(CertificateException e) {
    String m = String.valueOf(e.getMessage());
    if (m.contains("PKIX")) {
      return "not signed by a CA this machine trusts";
    }
    if (m.contains("subject alternative") || m.contains("No name matching")) {
      return "issued for another host name";
    }
    return m;
  }

  @Override
  public void checkClientTrusted(X509Certificate[] certs, String authType, SSLEngine engine)
      throws CertificateException {
    throw new CertificateException("thaw is a client");
  }

  @Override
  public void checkClientTrusted(X509Certificate[] certs, String authType, Socket socket)
      throws CertificateException {
    throw new CertificateException("thaw is a client");
  }

  @Override
  public void checkClientTrusted(X509Certificate[] certs, String authType)
      throws CertificateException {
    throw new CertificateException("thaw is a client");
  }

  @Override
  public X509Certificate[] getAcceptedIssuers() {
    try {
      return chain().getAcceptedIssuers();
    } catch (CertificateException e) {
      return new X509Certificate[0];
    }
  }
}
