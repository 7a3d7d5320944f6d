import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayDeque;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * A TCP proxy that emulates a network path with a round-trip time and, optionally, a bandwidth cap.
 * Benchmark helper for thaw; JDK only.
 *
 * <pre>
 * java LatencyProxy.java --listen 127.0.0.1:PORT --target 127.0.0.1:PORT --rtt-ms 10
 *      [--route 127.0.0.1:PORT=HOST:PORT]... [--rate-mbit N] [--buffer-mib N] [--verbose]
 * </pre>
 *
 * Each --route (and the --listen/--target pair, if given) is one listener forwarding to one target;
 * all routes share the same emulated path (RTT and the --rate-mbit links), so that several servers
 * can sit behind one network, as in tests/bench/run.
 *
 * <p>Each direction is a delay line: every block of bytes read is forwarded rtt/2 after it was
 * read, independently of the blocks before and after it, so a long transfer keeps its throughput
 * (unlike sleeping before each read). Up to --buffer-mib (default 32) bytes may be in flight per
 * direction; when that fills, reading pauses (back-pressure, like a full TCP window).
 *
 * <p>The TCP handshake with the proxy itself is local and instant, so to charge a new connection
 * its real cost (one RTT before the client can send), bytes from the client leave no earlier than
 * one RTT after accept. A request on a fresh connection thus sees ~2 RTT to its first response
 * byte, on a reused one ~1 RTT.
 *
 * <p>--rate-mbit caps each direction to N Mbit/s shared by all connections, like one link: a block
 * leaves no earlier than the link is free again.
 *
 * <p>One thread per direction, i.e. one pair of threads per connection; bytes stay in direct
 * buffers between the kernel's copies. Listens on 127.0.0.1 only (port 0 = any free port) and
 * prints "listening on PORT" once per route, in the order the routes were given.
 */
public class LatencyProxy {

  /** A shared link per direction; serialises blocks at the configured rate. */
  static final class Link {
    final double nsPerByte; // 0 = unlimited
    private long freeAt; // nanoTime when the link is idle again

    Link(double mbit) {
      this.nsPerByte = mbit > 0 ? 8_000.0 / mbit : 0; // 8 bits / (mbit * 1e6 /s) in ns
    }

    /** Reserves the link for len bytes, not before earliest; returns the send time. */
    synchronized long reserve(int len, long earliest) {
      if (nsPerByte == 0) {
        return earliest;
      }
      long start = Math.max(earliest, freeAt);
      freeAt = start + (long) (len * nsPerByte);
      return start;
    }
  }

  /** Bytes read at one moment, held in a direct buffer until they are due downstream. */
  static final class Block {
    final ByteBuffer data;
    final long due;

    Block(ByteBuffer data, long due) {
      this.data = data;
      this.due = due;
    }
  }

  /** Size of the direct buffers of the delay line: one read from the kernel at most. */
  static final int BLOCK = 256 * 1024;

  static long oneWayNs;
  static long bufferLimit;
  static boolean verbose;
  static final AtomicInteger connections = new AtomicInteger();
  static final AtomicLong bytesUp = new AtomicLong();
  static final AtomicLong bytesDown = new AtomicLong();

  public static void main(String[] args) throws Exception {
    String listen = null;
    String target = null;
    java.util.List<String[]> routes = new java.util.ArrayList<>();
    double rttMs = -1;
    double rateMbit = 0;
    double bufferMib = 32;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--listen" -> listen = value(args, ++i, a);
        case "--target" -> target = value(args, ++i, a);
        case "--route" -> {
          String r = value(args, ++i, a);
          int eq = r.indexOf('=');
          if (eq < 0) {
            usage("--route needs LISTEN=TARGET, got " + r);
          }
          routes.add(new String[] {r.substring(0, eq), r.substring(eq + 1)});
        }
        case "--rtt-ms" -> rttMs = Double.parseDouble(value(args, ++i, a));
        case "--rate-mbit" -> rateMbit = Double.parseDouble(value(args, ++i, a));
        case "--buffer-mib" -> bufferMib = Double.parseDouble(value(args, ++i, a));
        case "--verbose" -> verbose = true;
        case "-h", "--help" -> {
          usage(null);
          return;
        }
        default -> usage("unknown argument " + a);
      }
    }
    if (listen != null || target != null) {
      if (listen == null || target == null) {
        usage("--listen and --target go together");
      }
      routes.add(0, new String[] {listen, target});
    }
    if (routes.isEmpty() || rttMs < 0) {
      usage("--listen and --target (or --route) and --rtt-ms are required");
    }
    if (rateMbit < 0 || bufferMib <= 0) {
      usage("--rate-mbit must be >= 0 and --buffer-mib > 0");
    }
    oneWayNs = (long) (rttMs * 1_000_000.0 / 2.0);
    bufferLimit = (long) (bufferMib * 1024 * 1024);
    Link up = new Link(rateMbit);
    Link down = new Link(rateMbit);

    java.util.List<Thread> acceptors = new java.util.ArrayList<>();
    for (String[] route : routes) {
      InetSocketAddress listenAddr = parseHostPort(route[0], true);
      InetSocketAddress targetAddr = parseHostPort(route[1], false);
      ServerSocketChannel server = ServerSocketChannel.open();
      server.setOption(StandardSocketOptions.SO_REUSEADDR, true);
      server.bind(listenAddr, 1024);
      int port = ((InetSocketAddress) server.getLocalAddress()).getPort();
      System.out.println("listening on " + port);
      System.out.flush();
      if (verbose) {
        System.err.printf(
            "latency-proxy: 127.0.0.1:%d -> %s, rtt %.3f ms, rate %s%n",
            port, targetAddr, rttMs, rateMbit > 0 ? rateMbit + " Mbit/s" : "unlimited");
      }
      Thread t = new Thread(() -> acceptLoop(server, targetAddr, up, down), "accept-" + port);
      t.start();
      acceptors.add(t);
    }
    for (Thread t : acceptors) {
      t.join();
    }
  }

  static void acceptLoop(
      ServerSocketChannel server, InetSocketAddress targetAddr, Link up, Link down) {
    while (true) {
      SocketChannel client;
      try {
        client = server.accept();
      } catch (IOException e) {
        System.err.println("latency-proxy: accept: " + e.getMessage());
        return;
      }
      long acceptedAt = System.nanoTime();
      int id = connections.incrementAndGet();
      Thread t =
          new Thread(() -> connect(id, client, acceptedAt, targetAddr, up, down), "conn-" + id);
      t.setDaemon(true);
      t.start();
    }
  }

  static void connect(
      int id,
      SocketChannel client,
      long acceptedAt,
      InetSocketAddress targetAddr,
      Link up,
      Link down) {
    SocketChannel upstream = null;
    try {
      upstream = SocketChannel.open();
      upstream.socket().connect(targetAddr, 10_000);
      for (SocketChannel c : new SocketChannel[] {client, upstream}) {
        c.setOption(StandardSocketOptions.TCP_NODELAY, true);
        c.configureBlocking(false);
      }
    } catch (IOException e) {
      System.err.println("latency-proxy: connect " + targetAddr + ": " + e.getMessage());
      closeQuietly(client);
      closeQuietly(upstream);
      return;
    }
    if (verbose) {
      System.err.println("latency-proxy: connection " + id + " from " + client.socket());
    }
    AtomicInteger open = new AtomicInteger(2);
    long handshakeDone = acceptedAt + 2 * oneWayNs; // client may send after one RTT
    SocketChannel server = upstream;
    Thread c2s =
        new Thread(() -> pump(client, server, up, bytesUp, open, handshakeDone), "c2s-" + id);
    c2s.setDaemon(true);
    c2s.start();
    // This thread becomes the second of the pair.
    Thread.currentThread().setName("s2c-" + id);
    pump(server, client, down, bytesDown, open, 0);
  }

  /**
   * Copies from -> to through a delay line, in one thread: it forwards every block that is due,
   * then waits for bytes to read until the next block is due (or indefinitely when nothing is
   * queued). Bytes stay in direct buffers from the read to the write, so that the proxy's own CPU
   * (it shares the machine with what it measures) is little more than the kernel's copies.
   */
  static void pump(
      SocketChannel from,
      SocketChannel to,
      Link link,
      AtomicLong counter,
      AtomicInteger open,
      long notBefore) {
    ArrayDeque<Block> queue = new ArrayDeque<>();
    ArrayDeque<ByteBuffer> free = new ArrayDeque<>();
    int maxBlocks = (int) Math.max(64, 2 * bufferLimit / BLOCK);
    long queued = 0;
    boolean eof = false;
    try (Selector readable = Selector.open();
        Selector writable = Selector.open()) {
      from.register(readable, SelectionKey.OP_READ);
      to.register(writable, SelectionKey.OP_WRITE);
      while (true) {
        long now = System.nanoTime();
        // 1. forward everything that is due
        while (!queue.isEmpty() && queue.peekFirst().due <= now) {
          Block b = queue.pollFirst();
          int len = b.data.remaining();
          long sendAt = link.reserve(len, b.due);
          sleepUntil(sendAt);
          writeFully(to, b.data, writable);
          queued -= len;
          counter.addAndGet(len);
          b.data.clear();
          free.addLast(b.data);
          now = System.nanoTime();
        }
        if (eof || queued >= bufferLimit || queue.size() >= maxBlocks) {
          if (queue.isEmpty()) {
            break; // eof and drained
          }
          sleepUntil(queue.peekFirst().due);
          continue;
        }
        // 2. read, but wake up when the next queued block is due
        long timeoutMs = 0;
        if (!queue.isEmpty()) {
          long waitNs = queue.peekFirst().due - now;
          timeoutMs = Math.max(1, (waitNs + 999_999) / 1_000_000);
        }
        readable.select(timeoutMs);
        readable.selectedKeys().clear();
        ByteBuffer buf = free.isEmpty() ? ByteBuffer.allocateDirect(BLOCK) : free.pollFirst();
        int n = from.read(buf);
        if (n <= 0) {
          free.addFirst(buf);
          eof = n < 0;
          continue;
        }
        buf.flip();
        long readAt = System.nanoTime();
        long due = (notBefore - readAt > 0 ? notBefore : readAt) + oneWayNs;
        if (oneWayNs == 0 && link.nsPerByte == 0 && queue.isEmpty()) {
          writeFully(to, buf, writable); // no delay line needed
          counter.addAndGet(n);
          buf.clear();
          free.addFirst(buf);
          continue;
        }
        queue.addLast(new Block(buf, due));
        queued += n;
      }
      // Propagate the half-close, then finish when both directions are done.
      try {
        to.shutdownOutput();
      } catch (IOException ignored) {
        // peer already gone
      }
      if (open.decrementAndGet() == 0) {
        closeQuietly(from);
        closeQuietly(to);
      }
    } catch (IOException e) {
      // A reset or close on either side ends the whole connection.
      closeQuietly(from);
      closeQuietly(to);
    }
  }

  /** Writes all of {@code b} to a non-blocking channel, waiting while its send buffer is full. */
  static void writeFully(SocketChannel to, ByteBuffer b, Selector writable) throws IOException {
    while (b.hasRemaining()) {
      if (to.write(b) == 0) {
        writable.select(1000);
        writable.selectedKeys().clear();
      }
    }
  }

  static void sleepUntil(long deadline) {
    long left;
    while ((left = deadline - System.nanoTime()) > 0) {
      LockSupport.parkNanos(left);
    }
  }

  static InetSocketAddress parseHostPort(String s, boolean listen) {
    int colon = s.lastIndexOf(':');
    if (colon < 0) {
      usage("expected HOST:PORT, got " + s);
    }
    String host = s.substring(0, colon);
    int port = Integer.parseInt(s.substring(colon + 1));
    if (listen) {
      if (!host.isEmpty() && !host.equals("127.0.0.1") && !host.equals("localhost")) {
        usage("--listen must be 127.0.0.1 (this proxy only binds to loopback)");
      }
      return new InetSocketAddress(InetAddress.getLoopbackAddress(), port); // 127.0.0.1
    }
    return new InetSocketAddress(host.isEmpty() ? "127.0.0.1" : host, port);
  }

  static String value(String[] args, int i, String opt) {
    if (i >= args.length) {
      usage(opt + " needs a value");
    }
    return args[i];
  }

  static void usage(String err) {
    if (err != null) {
      System.err.println("latency-proxy: " + err);
    }
    System.err.println(
        "usage: java LatencyProxy.java --listen 127.0.0.1:PORT --target HOST:PORT"
            + " --rtt-ms MS [--route LISTEN=TARGET]... [--rate-mbit N] [--buffer-mib N] [--verbose]");
    if (err != null) {
      System.exit(2);
    }
  }

  static void closeQuietly(SocketChannel s) {
    if (s == null) {
      return;
    }
    try {
      s.close();
    } catch (IOException ignored) {
      // nothing to do
    }
  }
}
