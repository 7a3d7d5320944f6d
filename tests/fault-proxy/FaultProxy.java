import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An HTTP/1.1 proxy in front of a static server that misbehaves on purpose, for thaw's end-to-end
 * fault tests. JDK only.
 *
 * <pre>
 * java FaultProxy.java --listen 127.0.0.1:PORT --target 127.0.0.1:PORT [--seed N]
 *      [--error-rate P] [--reset-rate P] [--truncate-rate P] [--flip-first]
 *      [--down-after N --down-for SECONDS]
 * </pre>
 *
 * Faults hit chunk requests only (paths containing {@code /.chunks/}); other files pass through.
 * For each chunk request, drawn from one seeded sequence:
 *
 * <ul>
 *   <li>{@code --error-rate}: answers 503, 500 or 429 in turn, without asking the server;
 *   <li>{@code --reset-rate}: sends the headers and half the body, then resets the connection;
 *   <li>{@code --truncate-rate}: sends the headers (full Content-Length) and half the body, then
 *       closes the connection normally;
 *   <li>{@code --flip-first}: the first response for each chunk has one bit flipped.
 * </ul>
 *
 * {@code --down-after N --down-for S}: at the N-th chunk request the proxy goes down: it closes its
 * listening socket (connections are refused) and resets every open connection; S seconds later it
 * listens on the same port again.
 *
 * <p>Each request is fetched from the server on a fresh connection as HTTP/1.0 (so bodies are never
 * chunked) and answered to the client with a Content-Length on its kept-alive connection. Listens
 * on 127.0.0.1 only (port 0 = any free port) and prints "listening on PORT"; every injected fault
 * and state change is logged on stderr.
 */
public class FaultProxy {
  static InetSocketAddress target;
  static double errorRate;
  static double resetRate;
  static double truncateRate;
  static boolean flipFirst;
  static int downAfter;
  static int downForSeconds;
  static Random random;
  static volatile ServerSocket listener;
  static volatile boolean down;
  static final Set<Socket> clients = ConcurrentHashMap.newKeySet();
  static final Set<String> seen = ConcurrentHashMap.newKeySet();
  static final AtomicInteger chunkRequests = new AtomicInteger();
  static final AtomicInteger errorCode = new AtomicInteger();

  enum Fault {
    NONE,
    ERROR,
    RESET,
    TRUNCATE
  }

  public static void main(String[] args) throws Exception {
    String listen = null;
    String targetSpec = null;
    long seed = 1;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--listen" -> listen = value(args, ++i, a);
        case "--target" -> targetSpec = value(args, ++i, a);
        case "--seed" -> seed = Long.parseLong(value(args, ++i, a));
        case "--error-rate" -> errorRate = rate(value(args, ++i, a));
        case "--reset-rate" -> resetRate = rate(value(args, ++i, a));
        case "--truncate-rate" -> truncateRate = rate(value(args, ++i, a));
        case "--flip-first" -> flipFirst = true;
        case "--down-after" -> downAfter = Integer.parseInt(value(args, ++i, a));
        case "--down-for" -> downForSeconds = Integer.parseInt(value(args, ++i, a));
        default -> usage("unknown argument " + a);
      }
    }
    if (listen == null || targetSpec == null) {
      usage("--listen and --target are required");
    }
    if ((downAfter > 0) != (downForSeconds > 0)) {
      usage("--down-after and --down-for go together");
    }
    random = new Random(seed);
    InetSocketAddress listenAddr = hostPort(listen);
    if (!listenAddr.getAddress().isLoopbackAddress()) {
      usage("--listen must be a loopback address");
    }
    target = hostPort(targetSpec);
    listener = bind(listenAddr);
    System.out.println("listening on " + listener.getLocalPort());
    System.out.flush();
    while (true) {
      ServerSocket l = listener;
      Socket c;
      try {
        c = l.accept();
      } catch (IOException e) {
        while (listener == l) { // closed for an outage: wait for the new listener
          Thread.sleep(20);
        }
        continue;
      }
      if (down) {
        reset(c);
        continue;
      }
      clients.add(c);
      Thread t = new Thread(() -> serve(c), "client");
      t.setDaemon(true);
      t.start();
    }
  }

  static ServerSocket bind(InetSocketAddress addr) throws IOException {
    IOException last = null;
    for (int i = 0; i < 100; i++) {
      ServerSocket s = new ServerSocket();
      s.setReuseAddress(true);
      try {
        s.bind(addr, 128);
        return s;
      } catch (IOException e) {
        s.close();
        last = e;
        sleep(50);
      }
    }
    throw last;
  }

  /** Refuses connections and resets open ones for --down-for seconds. */
  static synchronized void goDown() {
    if (down) {
      return;
    }
    down = true;
    InetSocketAddress addr = (InetSocketAddress) listener.getLocalSocketAddress();
    close(listener);
    for (Socket c : clients) {
      reset(c);
    }
    log("down for " + downForSeconds + " s (connections refused)");
    Thread up =
        new Thread(
            () -> {
              sleep(downForSeconds * 1000L);
              try {
                ServerSocket s = bind(addr);
                down = false;
                listener = s;
                log("up again");
              } catch (IOException e) {
                log("cannot listen again: " + e);
                System.exit(1);
              }
            },
            "up");
    up.setDaemon(true);
    up.start();
  }

  static void serve(Socket client) {
    try (client) {
      client.setTcpNoDelay(true);
      InputStream in = new BufferedInputStream(client.getInputStream());
      OutputStream out = client.getOutputStream();
      while (true) {
        String head = readHead(in);
        if (head == null) {
          return;
        }
        String[] lines = head.split("\r\n");
        String[] req = lines[0].split(" ");
        if (req.length != 3) {
          out.write(simple(400, "Bad Request"));
          return;
        }
        String method = req[0];
        String path = req[1];
        boolean chunk = path.contains("/.chunks/");
        Fault f = Fault.NONE;
        if (chunk) {
          int n = chunkRequests.incrementAndGet();
          if (n == downAfter) {
            goDown(); // resets this connection too
            return;
          }
          f = draw();
        }
        if (f == Fault.ERROR) {
          int code =
              switch (errorCode.getAndIncrement() % 3) {
                case 0 -> 503;
                case 1 -> 500;
                default -> 429;
              };
          log(code + " " + path);
          out.write(
              simple(
                  code,
                  code == 429
                      ? "Too Many Requests"
                      : code == 500 ? "Internal Server Error" : "Service Unavailable"));
          out.flush();
          continue;
        }
        byte[][] resp = upstream(method, path, lines);
        byte[] body = resp[1];
        if (f == Fault.RESET || f == Fault.TRUNCATE) {
          out.write(resp[0]);
          out.write(body, 0, body.length / 2);
          out.flush();
          log(
              (f == Fault.RESET ? "reset" : "truncate")
                  + " "
                  + path
                  + " after "
                  + body.length / 2
                  + " of "
                  + body.length
                  + " bytes");
          if (f == Fault.RESET) {
            reset(client);
          }
          return;
        }
        if (flipFirst && chunk && body.length > 0 && seen.add(path)) {
          body[body.length / 2] ^= 0x08;
          log("flip " + path);
        }
        out.write(resp[0]);
        out.write(body);
        out.flush();
      }
    } catch (IOException e) {
      // the client went away, or the proxy reset it
    } finally {
      clients.remove(client);
    }
  }

  static Fault draw() {
    double x;
    synchronized (random) {
      x = random.nextDouble();
    }
    if (x < errorRate) {
      return Fault.ERROR;
    }
    x -= errorRate;
    if (x < resetRate) {
      return Fault.RESET;
    }
    x -= resetRate;
    return x < truncateRate ? Fault.TRUNCATE : Fault.NONE;
  }

  /**
   * Fetches one request from the server on a fresh HTTP/1.0 connection; returns a response head for
   * the client (with Content-Length, kept alive) and the body.
   */
  static byte[][] upstream(String method, String path, String[] lines) throws IOException {
    StringBuilder req = new StringBuilder(method + " " + path + " HTTP/1.0\r\n");
    for (int i = 1; i < lines.length; i++) {
      String name =
          lines[i].substring(0, Math.max(0, lines[i].indexOf(':'))).trim().toLowerCase(Locale.ROOT);
      if (!name.equals("connection") && !name.equals("keep-alive")) {
        req.append(lines[i]).append("\r\n");
      }
    }
    req.append("Connection: close\r\n\r\n");
    byte[] all;
    try (Socket s = new Socket()) {
      s.connect(target, 10_000);
      s.getOutputStream().write(req.toString().getBytes(StandardCharsets.ISO_8859_1));
      all = s.getInputStream().readAllBytes();
    } catch (IOException e) {
      return new byte[][] {simple(502, "Bad Gateway"), new byte[0]};
    }
    int end = indexOf(all, "\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
    if (end < 0) {
      return new byte[][] {simple(502, "Bad Gateway"), new byte[0]};
    }
    String[] h = new String(all, 0, end, StandardCharsets.ISO_8859_1).split("\r\n");
    byte[] body = java.util.Arrays.copyOfRange(all, end + 4, all.length);
    String status = h[0].substring(h[0].indexOf(' ') + 1);
    StringBuilder head = new StringBuilder("HTTP/1.1 " + status + "\r\n");
    String length = String.valueOf(body.length);
    for (int i = 1; i < h.length; i++) {
      String name =
          h[i].substring(0, Math.max(0, h[i].indexOf(':'))).trim().toLowerCase(Locale.ROOT);
      if (name.equals("content-length") && method.equals("HEAD")) {
        length = h[i].substring(h[i].indexOf(':') + 1).trim();
      } else if (!List.of("connection", "keep-alive", "transfer-encoding", "content-length")
          .contains(name)) {
        head.append(h[i]).append("\r\n");
      }
    }
    head.append("Content-Length: ").append(length).append("\r\nConnection: keep-alive\r\n\r\n");
    return new byte[][] {head.toString().getBytes(StandardCharsets.ISO_8859_1), body};
  }

  static byte[] simple(int code, String reason) {
    return ("HTTP/1.1 "
            + code
            + " "
            + reason
            + "\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n")
        .getBytes(StandardCharsets.ISO_8859_1);
  }

  /** A request head up to the empty line, or null at the end of the stream. */
  static String readHead(InputStream in) throws IOException {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    int last4 = 0;
    while (last4 != 0x0d0a0d0a) {
      int c = in.read();
      if (c < 0) {
        return null;
      }
      b.write(c);
      last4 = (last4 << 8) | c;
      if (b.size() > 65536) {
        throw new IOException("request head too long");
      }
    }
    return b.toString(StandardCharsets.ISO_8859_1).stripTrailing();
  }

  static int indexOf(byte[] a, byte[] pat) {
    outer:
    for (int i = 0; i + pat.length <= a.length; i++) {
      for (int j = 0; j < pat.length; j++) {
        if (a[i + j] != pat[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  /** Closes with a TCP reset (SO_LINGER 0), like a peer that crashed or a middlebox. */
  static void reset(Socket s) {
    try {
      s.setSoLinger(true, 0);
    } catch (IOException e) {
      // closed already
    }
    close(s);
  }

  static void close(java.io.Closeable c) {
    try {
      c.close();
    } catch (IOException e) {
      // nothing to do
    }
  }

  static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  static void log(String msg) {
    System.err.println("fault-proxy: " + msg);
    System.err.flush();
  }

  static double rate(String s) {
    double r = Double.parseDouble(s);
    if (r < 0 || r > 1) {
      usage("a rate must be between 0 and 1: " + s);
    }
    return r;
  }

  static InetSocketAddress hostPort(String s) throws IOException {
    int c = s.lastIndexOf(':');
    if (c < 0) {
      usage("want HOST:PORT, not " + s);
    }
    return new InetSocketAddress(
        InetAddress.getByName(s.substring(0, c)), Integer.parseInt(s.substring(c + 1)));
  }

  static String value(String[] args, int i, String opt) {
    if (i >= args.length) {
      usage(opt + " needs a value");
    }
    return args[i];
  }

  static void usage(String err) {
    if (err != null) {
      System.err.println("fault-proxy: " + err);
    }
    System.err.println(
        "usage: java FaultProxy.java --listen 127.0.0.1:PORT --target HOST:PORT [--seed N]"
            + " [--error-rate P] [--reset-rate P] [--truncate-rate P] [--flip-first]"
            + " [--down-after N --down-for SECONDS]");
    System.exit(2);
  }
}
