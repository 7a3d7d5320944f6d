package dev.thaw.store;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import javax.net.SocketFactory;

/**
 * Plain TCP sockets whose input is read from the kernel in gulps of up to {@link #GULP} bytes.
 * OkHttp's I/O library asks a socket for at most 8 KiB per read, so a 4 MiB chunk body took 512
 * system calls, each through the JDK's socket read path; behind a buffer of this size it takes 32.
 * TLS, when used, runs on top of these sockets and gains the same. Thread-safe as sockets are: one
 * reader at a time.
 */
final class BufferedSockets extends SocketFactory {
  /** The most the JDK reads from a socket in one call (its temporary direct buffer). */
  static final int GULP = 128 * 1024;

  @Override
  public Socket createSocket() {
    return new BufferedSocket();
  }

  @Override
  public Socket createSocket(String host, int port) throws IOException {
    return connected(new InetSocketAddress(host, port));
  }

  @Override
  public Socket createSocket(String host, int port, InetAddress localHost, int localPort)
      throws IOException {
    Socket s = new BufferedSocket();
    s.bind(new InetSocketAddress(localHost, localPort));
    s.connect(new InetSocketAddress(host, port));
    return s;
  }

  @Override
  public Socket createSocket(InetAddress host, int port) throws IOException {
    return connected(new InetSocketAddress(host, port));
  }

  @Override
  public Socket createSocket(InetAddress address, int port, InetAddress localAddress, int localPort)
      throws IOException {
    Socket s = new BufferedSocket();
    s.bind(new InetSocketAddress(localAddress, localPort));
    s.connect(new InetSocketAddress(address, port));
    return s;
  }

  private static Socket connected(InetSocketAddress to) throws IOException {
    Socket s = new BufferedSocket();
    s.connect(to);
    return s;
  }

  /** A socket whose input stream is buffered, one buffer for its life. */
  private static final class BufferedSocket extends Socket {
    private InputStream in;

    @Override
    public synchronized InputStream getInputStream() throws IOException {
      if (in == null) {
        in = new BufferedInputStream(super.getInputStream(), GULP);
      }
      return in;
    }
  }
}
