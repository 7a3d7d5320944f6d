import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * The least work a client can do to fetch and check every chunk of a datastore: the measuring stick
 * that tells how much of the gap between a local store and an HTTP one is thaw's and how much is
 * the machine's (the kernel's TCP path, and a server sharing the client's cores).
 *
 * <pre>
 *   java ReadCeiling.java DATASTORE [URL] [--parallel N]
 * </pre>
 *
 * Reads every file under DATASTORE/.chunks with N threads (default 16): without URL from the
 * directory, with URL by HTTP/1.1 GETs of URL + ".chunks/..." over one kept-alive connection per
 * thread (plain http:// only; Content-Length bodies only, as nginx sends for files). Each body goes
 * straight into an array of its size and through the JDK's SHA-256, as every client that checks
 * chunks must. Nothing else: no decompression, no pooling, no retries. Prints one line: files,
 * bytes, seconds, MB/s. Time it with /usr/bin/time for its CPU seconds.
 */
public final class ReadCeiling {
  public static void main(String[] args) throws Exception {
    Path store = null;
    URI url = null;
    int parallel = 16;
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--parallel")) {
        parallel = Integer.parseInt(args[++i]);
      } else if (store == null) {
        store = Path.of(args[i]);
      } else {
        url = URI.create(args[i].endsWith("/") ? args[i] : args[i] + "/");
      }
    }
    if (store == null) {
      System.err.println("usage: java ReadCeiling.java DATASTORE [URL] [--parallel N]");
      System.exit(2);
    }
    if (url != null && !"http".equals(url.getScheme())) {
      throw new IllegalArgumentException("only http:// URLs: " + url);
    }
    final Path root = store;
    final URI base = url;
    List<String> files;
    try (Stream<Path> s = Files.walk(root.resolve(".chunks"))) {
      files =
          s.filter(Files::isRegularFile)
              .map(p -> root.relativize(p).toString())
              .sorted()
              .collect(Collectors.toList());
    }
    AtomicInteger next = new AtomicInteger();
    AtomicLong bytes = new AtomicLong();
    Thread[] threads = new Thread[parallel];
    Throwable[] failure = new Throwable[1];
    long t0 = System.nanoTime();
    for (int t = 0; t < parallel; t++) {
      threads[t] =
          new Thread(
              () -> {
                try {
                  MessageDigest sha = MessageDigest.getInstance("SHA-256");
                  try (Fetcher f = base == null ? new FileFetcher(root) : new HttpFetcher(base)) {
                    for (int i; (i = next.getAndIncrement()) < files.size(); ) {
                      int n = f.fetch(files.get(i));
                      sha.update(f.buffer(), 0, n);
                      sha.digest();
                      bytes.addAndGet(n);
                    }
                  }
                } catch (Throwable e) {
                  synchronized (failure) {
                    failure[0] = e;
                  }
                }
              });
      threads[t].start();
    }
    for (Thread t : threads) {
      t.join();
    }
    if (failure[0] != null) {
      failure[0].printStackTrace();
      System.exit(1);
    }
    double secs = (System.nanoTime() - t0) / 1e9;
    System.out.printf(
        Locale.ROOT,
        "%d files, %d bytes in %.3f s, %.1f MB/s%n",
        files.size(),
        bytes.get(),
        secs,
        bytes.get() / secs / 1e6);
  }

  /** Fetches into one array of its own; not thread-safe. */
  abstract static class Fetcher implements AutoCloseable {
    private byte[] buffer = new byte[0];

    /** Reads the file into {@link #buffer()} and returns its length. */
    abstract int fetch(String relPath) throws IOException;

    /** The array the last fetch filled, at least {@code size} bytes long. */
    final byte[] buffer(int size) {
      if (buffer.length < size) {
        buffer = new byte[size];
      }
      return buffer;
    }

    final byte[] buffer() {
      return buffer;
    }

    @Override
    public abstract void close() throws IOException;
  }

  /** A file read whole with one positional read, as a local store does. */
  static final class FileFetcher extends Fetcher {
    private final Path root;

    FileFetcher(Path root) {
      this.root = root;
    }

    @Override
    int fetch(String relPath) throws IOException {
      try (FileChannel ch = FileChannel.open(root.resolve(relPath))) {
        int size = (int) ch.size();
        ByteBuffer b = ByteBuffer.wrap(buffer(size), 0, size);
        while (b.hasRemaining() && ch.read(b, b.position()) >= 0) {}
        return size;
      }
    }

    @Override
    public void close() {}
  }

  /** GETs on one kept-alive HTTP/1.1 connection, each body read straight into its array. */
  static final class HttpFetcher extends Fetcher {
    private final URI base;
    private final Socket socket;
    private final InputStream in;
    private final OutputStream out;
    private final byte[] head = new byte[16 * 1024];

    HttpFetcher(URI base) throws IOException {
      this.base = base;
      this.socket = new Socket(base.getHost(), base.getPort() < 0 ? 80 : base.getPort());
      socket.setTcpNoDelay(true);
      this.in = socket.getInputStream();
      this.out = socket.getOutputStream();
    }

    @Override
    int fetch(String relPath) throws IOException {
      String host = base.getHost() + (base.getPort() < 0 ? "" : ":" + base.getPort());
      out.write(
          ("GET " + base.getRawPath() + relPath + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
              .getBytes(StandardCharsets.US_ASCII));
      out.flush();
      // the response head, byte by byte up to the blank line (a few hundred bytes per chunk)
      int n = 0;
      while (n < 4
          || head[n - 4] != '\r'
          || head[n - 3] != '\n'
          || head[n - 2] != '\r'
          || head[n - 1] != '\n') {
        int c = in.read();
        if (c < 0) {
          throw new EOFException("connection closed in a response head for " + relPath);
        }
        if (n == head.length) {
          throw new IOException("response head too long for " + relPath);
        }
        head[n++] = (byte) c;
      }
      String h = new String(head, 0, n, StandardCharsets.ISO_8859_1);
      if (!h.startsWith("HTTP/1.1 200")) {
        throw new IOException(h.lines().findFirst().orElse("") + " for " + relPath);
      }
      int length = -1;
      for (String line : h.split("\r\n")) {
        int colon = line.indexOf(':');
        if (colon > 0 && line.substring(0, colon).trim().equalsIgnoreCase("Content-Length")) {
          length = Integer.parseInt(line.substring(colon + 1).trim());
        }
      }
      if (length < 0) {
        throw new IOException("no Content-Length for " + relPath);
      }
      byte[] body = buffer(length);
      for (int off = 0; off < length; ) {
        int r = in.read(body, off, length - off);
        if (r < 0) {
          throw new EOFException("body cut short for " + relPath);
        }
        off += r;
      }
      return length;
    }

    @Override
    public void close() throws IOException {
      socket.close();
    }
  }
}
