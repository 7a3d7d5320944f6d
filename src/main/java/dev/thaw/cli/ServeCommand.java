package dev.thaw.cli;

import dev.thaw.crypto.CryptConfig;
import dev.thaw.fetch.FetchPipeline;
import dev.thaw.nbd.Export;
import dev.thaw.nbd.NbdServer;
import dev.thaw.restore.LiveRestores;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.SnapshotPath;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
    name = "serve",
    mixinStandardHelpOptions = true,
    description = {
      "Serve a snapshot's images (or a casync image) over NBD, one export per "
          + "archive, for qemu, qemu-img, nbdcopy and nbdinfo; chunks are fetched when read.",
      "On a unix socket (default: $XDG_RUNTIME_DIR/thaw/nbd.sock, as root without "
          + "XDG_RUNTIME_DIR /run/thaw/nbd.sock); on TCP only with --listen.",
      "Runs until SIGTERM or Ctrl-C: requests under way are answered, targets synced, "
          + "the socket file removed. 'thaw status SOCKET' reads SOCKET.status."
    })
final class ServeCommand implements Callable<Integer> {
  @Mixin StoreOptions storeOptions;

  @Mixin KeyOptions key;

  @Mixin TrustOptions trust;

  @Mixin IndexOptions casync;

  @Mixin ReadOptions read;

  @Mixin WritableOptions writable;

  @Spec CommandSpec spec;

  @Option(
      names = "--socket",
      paramLabel = "PATH",
      description = "Listen on this unix socket (the default unless --listen is given alone).")
  Path socket;

  @Option(
      names = "--listen",
      paramLabel = "[ADDR:]PORT",
      description = {
        "Listen on TCP, on 127.0.0.1 unless ADDR is given. NBD has no authentication:",
        "anyone who reaches the port reads (and, with --restore-to, writes) the images."
      })
  String listen;

  @Option(
      names = "--status-file",
      paramLabel = "FILE",
      description =
          "Where the status document is kept (default: SOCKET.status, or beside the default socket).")
  Path statusFile;

  @Parameters(
      arity = "0..1",
      paramLabel = "SNAPSHOT",
      description = "Snapshot (TYPE/ID/TIME) to serve.")
  List<String> positional = new ArrayList<>();

  @Override
  public Integer call() throws Exception {
    casync.checkArguments(spec, positional, 0, 1, key);
    SnapshotPath snapshot = casync.given() ? null : SnapshotPath.parse(positional.get(0));
    long cacheBytes = read.cacheBytes(); // checked here, before anything is opened
    LiveRestores.Targets targets = writable.targets(snapshot != null, storeOptions.parallel);
    List<SocketAddress> addresses = new ArrayList<>();
    Path unix = socket != null || listen == null ? socketPath() : null;
    if (unix != null) {
      addresses.add(UnixDomainSocketAddress.of(unix));
    }
    if (listen != null) {
      addresses.add(tcp(listen));
    }
    Path status =
        statusFile != null
            ? statusFile.toAbsolutePath()
            : unix != null
                ? Path.of(unix + ".status")
                : runtimeDir()
                    .resolve("nbd-" + ((InetSocketAddress) addresses.get(0)).getPort() + ".status");
    CryptConfig k = key.load();
    try (ChunkStore store = casync.openStore(storeOptions);
        FetchPipeline pipeline = storeOptions.pipeline(store);
        ExportSet set =
            casync.given()
                ? ExportSet.ofImages(
                    List.of(casync.open(storeOptions, pipeline)),
                    pipeline,
                    cacheBytes,
                    read.settings())
                : ExportSet.ofSnapshot(
                    pipeline, trust.policy(k), snapshot, cacheBytes, read.settings(), targets)) {
      set.warnings().forEach(w -> System.err.println("thaw: warning: " + w));
      serve(set, addresses, unix, status, snapshot != null ? snapshot.toString() : casync.index);
    }
    return 0;
  }

  /** Serves until SIGTERM or SIGINT; then requests under way are answered and targets synced. */
  private void serve(
      ExportSet set, List<SocketAddress> addresses, Path unix, Path status, String what)
      throws IOException, InterruptedException {
    NbdServer server = new NbdServer(set.exports(), NbdServer.Options.defaults(), System.err);
    // requests under way wait at most the read timeout for their chunks
    Duration grace = read.settings().readTimeout().plusSeconds(5);
    CountDownLatch closed = new CountDownLatch(1);
    Thread hook =
        new Thread(
            () -> {
              server.shutdown(grace);
              try {
                closed.await(
                    grace.toSeconds() + 30, TimeUnit.SECONDS); // until the targets are synced
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            },
            "thaw-serve-stop");
    Runtime.getRuntime().addShutdownHook(hook);
    ScheduledExecutorService statusWriter =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "thaw-serve-status");
              t.setDaemon(true);
              return t;
            });
    try {
      if (unix != null) {
        createPrivateDir(unix.getParent());
      }
      createPrivateDir(status.getParent());
      for (SocketAddress a : addresses) {
        server.listen(a);
      }
      set.startBackground();
      List<String> uris = uris(set.exports(), unix, addresses);
      var unused =
          statusWriter.scheduleWithFixedDelay(
              () -> writeStatus(status, () -> set.status(server.stats(), uris)),
              0,
              1,
              TimeUnit
                  .SECONDS); // ends with the executor; writeStatus never throws, which would end it
      System.err.println("thaw: serving " + what + " over NBD:");
      for (int i = 0; i < uris.size(); i++) {
        Export e = set.exports().get(i % set.exports().size());
        System.err.println(
            "  " + uris.get(i) + "  (" + e.description() + ", " + Units.bytes(e.size()) + ")");
      }
      System.err.println(
          "thaw: status: thaw status "
              + (unix != null ? unix : status)
              + "; stop with SIGTERM or Ctrl-C");
      System.err.flush();
      server.awaitTermination();
    } finally {
      server.shutdown(grace);
      statusWriter.shutdownNow();
      statusWriter.awaitTermination(5, TimeUnit.SECONDS);
      Files.deleteIfExists(status);
      try {
        set.close(); // background restores stop; every target and state file made durable
        System.err.println("thaw: stopped serving");
      } finally {
        closed.countDown(); // the shutdown hook waits for this: the JVM exits only after it
        try {
          Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
          // shutting down
        }
      }
    }
  }

  /** The URI of every export at every address: unix socket first. */
  private static List<String> uris(List<Export> exports, Path unix, List<SocketAddress> addresses) {
    List<String> uris = new ArrayList<>();
    for (SocketAddress a : addresses) {
      for (Export e : exports) {
        if (a instanceof InetSocketAddress t) {
          String host = t.getAddress().getHostAddress();
          uris.add(
              "nbd://"
                  + (host.contains(":") ? "[" + host + "]" : host)
                  + ":"
                  + t.getPort()
                  + "/"
                  + e.name());
        } else {
          uris.add("nbd+unix:///" + e.name() + "?socket=" + unix);
        }
      }
    }
    return uris;
  }

  private static void writeStatus(Path file, java.util.function.Supplier<byte[]> doc) {
    try {
      Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
      Files.write(tmp, doc.get());
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException | RuntimeException e) {
      System.err.println("thaw: cannot write the status file " + file + ": " + e.getMessage());
    }
  }

  private Path socketPath() throws IOException {
    return socket != null ? socket.toAbsolutePath().normalize() : runtimeDir().resolve("nbd.sock");
  }

  /** $XDG_RUNTIME_DIR/thaw, else /run/thaw for root, else /tmp/thaw-UID. */
  private static Path runtimeDir() throws IOException {
    String xdg = System.getenv("XDG_RUNTIME_DIR");
    if (xdg != null && xdg.startsWith("/")) {
      return Path.of(xdg, "thaw");
    }
    long uid = ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).longValue();
    return uid == 0
        ? Path.of("/run/thaw")
        : Path.of(System.getProperty("java.io.tmpdir"), "thaw-" + uid);
  }

  /** Creates a directory for the socket or status file if it is missing, for its owner only. */
  private static void createPrivateDir(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      Files.createDirectories(
          dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    }
  }

  /** {@code PORT}, {@code ADDR:PORT} or {@code [V6ADDR]:PORT}; 127.0.0.1 by default. */
  private static InetSocketAddress tcp(String spec) throws IOException {
    int colon = spec.lastIndexOf(':');
    String host = colon < 0 ? "127.0.0.1" : spec.substring(0, colon).replaceAll("^\\[|\\]$", "");
    int port;
    try {
      port = Integer.parseInt(spec.substring(colon + 1));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("--listen takes [ADDR:]PORT, not " + spec);
    }
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("--listen: port " + port + " is not between 1 and 65535");
    }
    InetAddress a = InetAddress.getByName(host);
    if (!a.isLoopbackAddress()) {
      System.err.println(
          "thaw: warning: serving on "
              + a.getHostAddress()
              + ": NBD has no authentication;"
              + " anyone who reaches it reads the images");
    }
    return new InetSocketAddress(a, port);
  }
}
