package dev.thaw.testing;

import okhttp3.mockwebserver.MockWebServer;
import okhttp3.tls.HandshakeCertificates;
import okhttp3.tls.HeldCertificate;

/** HTTPS test servers with certificates from throwaway CAs. */
public final class TlsServers {
  private TlsServers() {}

  /** A new certificate authority named {@code name}. */
  public static HeldCertificate ca(String name) {
    return new HeldCertificate.Builder().certificateAuthority(0).commonName(name).build();
  }

  /**
   * A MockWebServer, not started yet, that speaks HTTPS with a certificate for 127.0.0.1 and
   * localhost signed by {@code ca}.
   */
  public static MockWebServer server(HeldCertificate ca) {
    HeldCertificate cert =
        new HeldCertificate.Builder()
            .signedBy(ca)
            .addSubjectAlternativeName("127.0.0.1")
            .addSubjectAlternativeName("localhost")
            .build();
    HandshakeCertificates certs =
        new HandshakeCertificates.Builder().heldCertificate(cert, ca.certificate()).build();
    MockWebServer s = new MockWebServer();
    s.useHttps(certs.sslSocketFactory(), false);
    return s;
  }
}
