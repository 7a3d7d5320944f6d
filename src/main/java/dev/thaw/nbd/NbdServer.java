package dev.thaw.nbd;

import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * An NBD server (fixed newstyle handshake, structured replies, {@code base:allocation}) for a set
 * of {@link Export}s, written against the NBD protocol document ({@code doc/proto.md} of the NBD
 * project). It listens on unix sockets or TCP addresses; each client connection has a thread that
 * reads its requests, and a bounded pool of workers serves the requests of all connections in
 * parallel. Buffers of reads and writes in flight are bounded in bytes.
 *
 * <p>{@link #shutdown} stops listening (a unix socket's file is removed), answers new requests
 * {@code NBD_ESHUTDOWN}, waits for the requests under way, then closes every connection.
 * Thread-safe.
 */
public final class NbdServer implements AutoCloseable {
  /**
   * The server's limits.
   *
   * @param workers threads serving requests, shared by all connections
   * @param bufferBytes bytes of read and write payloads held at once, across all connections
   * @param maxConnections clients served at once; more are closed at once
   */
  public record Options(int workers, int bufferBytes, int maxConnections) {
    public static Options defaults() {
      return new Options(32, 64 << 20, 64);
    }
  }

  /** What the server has done so far. */
  public record Stats(
      int connections,
      long connectionsTotal,
      long requests,
      long bytesRead,
      long bytesWritten,
      long errors) {}

  private final ExportTable exports;
  private final Options options;
  private final PrintStream log;
  private final ExecutorService workers;
  private final Semaphore buffers;
  private final AtomicBoolean shuttingDown = new AtomicBoolean();
  private final CountDownLatch terminated = new CountDownLatch(1);
  private final List<ServerSocketChannel> listeners = new ArrayList<>();
  private final List<Path> socketFiles = new ArrayList<>();
  private final Set<Connection> connections = ConcurrentHashMap.newKeySet();
  private final AtomicLong connectionIds = new AtomicLong();
  private final LongAdder requests = new LongAdder();
  private final LongAdder bytesRead = new LongAdder();
  private final LongAdder bytesWritten = new LongAdder();
  private final LongAdder errors = new LongAdder();

  /**
   * @param exports the exports, by their names; the first is also the default export (the empty
   *     name)
   * @param log where connections and failed requests are reported
   */
  public NbdServer(List<Export> exports, Options options, PrintStream log) {
    this.exports = new ExportTable(exports);
    this.options = options;
    this.log = log;
    this.buffers = new Semaphore(options.bufferBytes(), true);
    AtomicLong n = new AtomicLong();
    this.workers =
        new ThreadPoolExecutor(
            options.workers(),
            options.workers(),
            30,
            TimeUnit.SECONDS,
            new LinkedBlockingQueue<>(),
            r -> {
              Thread t = new Thread(r, "thaw-nbd-worker-" + n.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
  }

  /**
   * Listens on {@code address}: a {@link UnixDomainSocketAddress} (a socket file left by a server
   * that is gone is replaced; one a server answers on is refused) or an {@link InetSocketAddress}.
   */
  public synchronized void listen(SocketAddress address) throws IOException {
    if (shuttingDown.get()) {
      throw new IllegalStateException("shut down");
    }
    ServerSocketChannel ch;
    if (address instanceof UnixDomainSocketAddress u) {
      Path p = u.getPath();
      removeStaleSocket(p);
      ch = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
      try {
        ch.bind(u);
      } catch (IOException e) {
        ch.close();
        throw new IOException("cannot listen on " + p + ": " + e.getMessage(), e);
      }
      socketFiles.add(p);
    } else {
      ch = ServerSocketChannel.open();
      try {
        ch.setOption(StandardSocketOptions.SO_REUSEADDR, true);
        ch.bind(address);
      } catch (IOException e) {
        ch.close();
        throw new IOException("cannot listen on " + address + ": " + e.getMessage(), e);
      }
    }
    listeners.add(ch);
    Thread t = new Thread(() -> accept(ch), "thaw-nbd-accept");
    t.setDaemon(true);
    t.start();
  }

  private static void removeStaleSocket(Path p) throws IOException {
    if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)
        || Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)
        || Files.isSymbolicLink(p)) {
      throw new IOException(p + " exists and is not a socket; name another --socket");
    }
    try {
      SocketChannel.open(UnixDomainSocketAddress.of(p)).close();
      throw new IOException("a server is listening on " + p + " already; name another --socket");
    } catch (IOException e) {
      if (e.getMessage() != null && e.getMessage().startsWith("a server is listening")) {
        throw e;
      }
      Files.deleteIfExists(p); // nobody answers: left by a server that was killed
    }
  }

  private void accept(ServerSocketChannel ch) {
    while (ch.isOpen()) {
      SocketChannel c;
      try {
        c = ch.accept();
      } catch (IOException e) {
        if (ch.isOpen()) {
          log("accept: " + e.getMessage());
        }
        return;
      }
      try {
        if (shuttingDown.get() || connections.size() >= options.maxConnections()) {
          log(
              shuttingDown.get()
                  ? "shutting down: a new connection closed"
                  : "more than " + options.maxConnections() + " connections: a new one closed");
          c.close();
          continue;
        }
        if (!(c.getLocalAddress() instanceof UnixDomainSocketAddress)) {
          c.setOption(StandardSocketOptions.TCP_NODELAY, true); // replies go out at once
        }
        long id = connectionIds.incrementAndGet();
        Connection conn = new Connection(this, new Wire(c), id);
        connections.add(conn);
        Thread t = new Thread(conn, "thaw-nbd-connection-" + id);
        t.setDaemon(true);
        t.start();
      } catch (IOException | RuntimeException e) {
        log("accept: " + e);
      }
    }
  }

  public Stats stats() {
    return new Stats(
        connections.size(),
        connectionIds.get(),
        requests.sum(),
        bytesRead.sum(),
        bytesWritten.sum(),
        errors.sum());
  }

  /**
   * Stops the server: no new connections, {@code NBD_ESHUTDOWN} for new requests, then waits up to
   * {@code grace} for the requests under way and closes every connection. Returns when done.
   */
  public void shutdown(Duration grace) {
    if (!shuttingDown.compareAndSet(false, true)) {
      awaitUninterruptibly();
      return;
    }
    try {
      synchronized (this) {
        for (ServerSocketChannel l : listeners) {
          try {
            l.close();
          } catch (IOException e) {
            log("closing a listener: " + e.getMessage());
          }
        }
        for (Path p : socketFiles) {
          try {
            Files.deleteIfExists(p);
          } catch (IOException e) {
            log("cannot remove " + p + ": " + e.getMessage());
          }
        }
      }
      long deadline = System.nanoTime() + grace.toNanos();
      while (System.nanoTime() < deadline && connections.stream().anyMatch(Connection::busy)) {
        TimeUnit.MILLISECONDS.sleep(20);
      }
      connections.forEach(Connection::abort);
      deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      while (System.nanoTime() < deadline && !connections.isEmpty()) {
        TimeUnit.MILLISECONDS.sleep(20);
      }
      workers.shutdown();
      workers.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      terminated.countDown();
    }
  }

  /** Blocks until {@link #shutdown} has finished. */
  public void awaitTermination() throws InterruptedException {
    terminated.await();
  }

  private void awaitUninterruptibly() {
    boolean interrupted = false;
    while (true) {
      try {
        terminated.await();
        break;
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }

  /** Shuts down, giving requests under way 30 s. */
  @Override
  public void close() {
    shutdown(Duration.ofSeconds(30));
  }

  // --- for connections ------------------------------------------------------------------------

  ExportTable exports() {
    return exports;
  }

  boolean shuttingDown() {
    return shuttingDown.get();
  }

  void execute(Runnable r) {
    workers.execute(r);
  }

  /** Waits until {@code bytes} of buffer may be held; returns what to {@link #unreserve}. */
  int reserve(int bytes) {
    int n = Math.min(bytes, options.bufferBytes());
    buffers.acquireUninterruptibly(n);
    return n;
  }

  void unreserve(int reserved) {
    if (reserved > 0) {
      buffers.release(reserved);
    }
  }

  void counted() {
    requests.increment();
  }

  void read(long n) {
    bytesRead.add(n);
  }

  void wrote(long n) {
    bytesWritten.add(n);
  }

  void failed() {
    errors.increment();
  }

  void closed(Connection c) {
    connections.remove(c);
  }

  void log(String message) {
    synchronized (log) {
      log.println(Instant.now() + " thaw serve: " + message);
      log.flush();
    }
  }
}
