package dev.thaw.cli;

import dev.thaw.store.ChunkLayout;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.Stores;
import dev.thaw.store.TrainingReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.BiConsumer;
import java.util.stream.Stream;

/**
 * The run from which the launcher ({@code mount-scripts/thaw}) makes its start-up archive: once per
 * JDK and jar, in the background, it runs this class under {@code -XX:ArchiveClassesAtExit} (JDK 17
 * to 24: a class-data sharing archive) or {@code -XX:AOTCacheOutput} (JDK 25 and later: an
 * ahead-of-time cache), and later commands map the classes it loaded instead of loading, parsing
 * and verifying them again.
 *
 * <p>It runs thaw's own commands, quietly, on a small image in a directory of its own below the
 * directory given, which it deletes. There are two trainings, each for an archive of its own: a JDK
 * 25 cache loads every class it holds when the JVM starts, so a mount, whose start is what a user
 * waits through, maps one of only what a mount loads.
 *
 * <ul>
 *   <li>{@code all}, for every command but {@code mount}: backup, ls, verify, restore (plain and
 *       encrypted), a mount rehearsed (its reads driven through the FUSE callbacks, no kernel
 *       mount), the help of every command, ls, verify and restore through an HTTP store, an HTTPS
 *       store and a Proxmox Backup Server's reader protocol, and the classes of an NBD server and
 *       the S3 store, loaded without starting any.
 *   <li>{@code mount}: a backup to rehearse on, then a mount rehearsed on the local store, on an
 *       HTTP and an HTTPS store and over the reader protocol, and the classes a live restore and
 *       the S3 store load.
 * </ul>
 *
 * <p>The HTTP(S) store is the JDK's own HTTP server, and the reader a {@link TrainingReader}, each
 * listening on 127.0.0.1 for these requests alone and serving that directory, with certificates
 * made for the run. Training writes nothing else, and reaches no other host.
 */
public final class StartupTraining {
  /** What a mount and the remote stores load before they do anything. */
  private static final List<String> MOUNT_CLASSES =
      List.of(
          "dev.thaw.fuse.Mounter",
          "dev.thaw.fuse.ThawFuse",
          "dev.thaw.fuse.ImagesTree",
          "dev.thaw.fuse.DatastoreTree",
          "dev.thaw.fuse.OpenFiles",
          "dev.thaw.fuse.Errno",
          "dev.thaw.restore.LiveRestore",
          "dev.thaw.restore.LiveRestores",
          "dev.thaw.restore.ServeStatus",
          "dev.thaw.store.S3Store",
          "ru.serce.jnrfuse.FuseStubFS",
          "ru.serce.jnrfuse.AbstractFuseFS",
          "okhttp3.OkHttpClient");

  private StartupTraining() {}

  /** {@code StartupTraining DIR [all|mount]}: trains in a new directory below DIR. */
  public static void main(String[] args) throws IOException {
    boolean mount = args.length > 1 && args[1].equals("mount");
    Path dir = Files.createTempDirectory(Path.of(args[0]), "training-");
    PrintStream out = System.out;
    PrintStream err = System.err;
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
    System.setErr(new PrintStream(OutputStream.nullOutputStream(), true, StandardCharsets.UTF_8));
    try {
      if (mount) {
        trainMount(dir, captured);
      } else {
        train(dir, captured);
      }
    } finally {
      System.setOut(out);
      System.setErr(err);
      deleteTree(dir);
    }
  }

  private static void train(Path dir, ByteArrayOutputStream captured) throws IOException {
    Path img = image(dir);
    String ds = dir.resolve("ds").toString();
    String key = dir.resolve("key.json").toString();
    run("--help");
    for (String c : Main.COMMANDS) {
      if (!c.equals("help")) {
        run(c, "--help");
      }
    }
    String snapshot = backup(captured, "--store", ds, "--id", "vm/100", img.toString());
    run("ls", "--store", ds);
    run("ls", "--store", ds, "--output", "json", snapshot);
    run("verify", "--store", ds, snapshot);
    run("partitions", "--store", ds, snapshot);
    String[] local = {"--store", ds};
    restore(System.getenv(), dir.resolve("out.img"), local, snapshot);
    Path mountpoint = Files.createDirectory(dir.resolve("mnt"));
    run("mount", "--rehearse", "--store", ds, snapshot, mountpoint.toString());
    run("key", "create", "--kdf", "none", key);
    String encrypted =
        backup(captured, "--store", ds, "--id", "vm/101", "--keyfile", key, img.toString());
    restore(System.getenv(), dir.resolve("out2.img"), local, "--keyfile", key, encrypted);
    overHttp(
        dir,
        (env, store) -> {
          run(env, with("ls", store, snapshot));
          run(env, with("verify", store, snapshot));
          restore(env, dir.resolve("out3.img"), store, snapshot);
        });
    overPbs(
        dir,
        (env, store) -> {
          run(env, with("ls", store)); // the snapshot listing, an API call of its own
          run(env, with("verify", store, snapshot));
          restore(env, dir.resolve("out4.img"), store, snapshot);
        });
    // what a mount, a server and the remote stores load before they do anything
    load(MOUNT_CLASSES);
    load(List.of("dev.thaw.nbd.NbdServer"));
  }

  /** The {@code mount} training: a mount rehearsed on a local store, over HTTP(S) and PBS. */
  private static void trainMount(Path dir, ByteArrayOutputStream captured) throws IOException {
    Path img = image(dir);
    String ds = dir.resolve("ds").toString();
    String snapshot = backup(captured, "--store", ds, "--id", "vm/100", img.toString());
    String mountpoint = Files.createDirectory(dir.resolve("mnt")).toString();
    run("mount", "--rehearse", "--store", ds, snapshot, mountpoint);
    BiConsumer<Map<String, String>, String[]> mount =
        (env, store) -> run(env, with("mount", store, "--rehearse", snapshot, mountpoint));
    overHttp(dir, mount);
    overPbs(dir, mount);
    load(MOUNT_CLASSES);
  }

  private static void load(List<String> classes) {
    for (String c : classes) {
      try {
        Class.forName(c, false, StartupTraining.class.getClassLoader());
      } catch (ClassNotFoundException | LinkageError e) {
        // a class that moved: the archive is only smaller
      }
    }
  }

  /** An 8 MiB image in {@code dir}: 4 MiB of random bytes, then 4 MiB of zeros. */
  private static Path image(Path dir) throws IOException {
    byte[] image = new byte[8 << 20];
    new Random(1).nextBytes(image);
    java.util.Arrays.fill(image, 4 << 20, 8 << 20, (byte) 0);
    return Files.write(dir.resolve("disk.img"), image);
  }

  /**
   * Runs {@code commands} with the datastore in {@code dir/ds} served on 127.0.0.1 over HTTP, then
   * over HTTPS: their store options ({@code --store URL}, and the server's certificate as {@code
   * --ca-file}). An HTTP store's client, its I/O library and Kotlin's runtime are some 200 classes;
   * the JDK's TLS client some 300 more. Skipped where the JDK has no {@code jdk.httpserver}.
   */
  private static void overHttp(Path dir, BiConsumer<Map<String, String>, String[]> commands) {
    Path root = dir.resolve("ds").toAbsolutePath().normalize();
    com.sun.net.httpserver.HttpHandler files =
        exchange -> {
          try (exchange) {
            Path file = root.resolve(exchange.getRequestURI().getPath().substring(1)).normalize();
            if (!file.startsWith(root) || !Files.isRegularFile(file)) {
              exchange.sendResponseHeaders(404, -1);
              return;
            }
            byte[] body = Files.readAllBytes(file);
            exchange.sendResponseHeaders(200, body.length);
            exchange.getResponseBody().write(body);
          }
        };
    java.net.InetSocketAddress loopback =
        new java.net.InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0);
    com.sun.net.httpserver.HttpServer server;
    try {
      server = com.sun.net.httpserver.HttpServer.create(loopback, 0);
    } catch (IOException | LinkageError e) {
      return;
    }
    server.createContext("/", files);
    server.start();
    try {
      commands.accept(
          System.getenv(),
          new String[] {"--store", "http://127.0.0.1:" + server.getAddress().getPort() + "/"});
    } finally {
      server.stop(0);
    }
    try {
      okhttp3.tls.HeldCertificate certificate =
          new okhttp3.tls.HeldCertificate.Builder().addSubjectAlternativeName("127.0.0.1").build();
      Path ca = Files.writeString(dir.resolve("training-ca.pem"), certificate.certificatePem());
      com.sun.net.httpserver.HttpsServer https =
          com.sun.net.httpserver.HttpsServer.create(loopback, 0);
      https.setHttpsConfigurator(
          new com.sun.net.httpserver.HttpsConfigurator(
              new okhttp3.tls.HandshakeCertificates.Builder()
                  .heldCertificate(certificate)
                  .build()
                  .sslContext()));
      https.createContext("/", files);
      https.start();
      try {
        commands.accept(
            System.getenv(),
            new String[] {
              "--store",
              "https://127.0.0.1:" + https.getAddress().getPort() + "/",
              "--ca-file",
              ca.toString()
            });
      } finally {
        https.stop(0);
      }
    } catch (IOException | RuntimeException e) {
      // training only: without HTTPS, the archive is only smaller
    }
  }

  /** {@code command}, then the store options {@code store}, then {@code rest}. */
  private static String[] with(String command, String[] store, String... rest) {
    List<String> all = new ArrayList<>();
    all.add(command);
    all.addAll(List.of(store));
    all.addAll(List.of(rest));
    return all.toArray(String[]::new);
  }

  /**
   * Runs {@code commands} with the datastore in {@code dir/ds} served over the PBS reader protocol
   * on 127.0.0.1: their environment (the token's secret, the server's fingerprint) and store
   * options ({@code --repository REPO}).
   */
  private static void overPbs(Path dir, BiConsumer<Map<String, String>, String[]> commands) {
    try (ChunkStore store =
            Stores.access(Stores.Options.defaults(1))
                .open(List.of(dir.resolve("ds").toString()), ChunkLayout.DATASTORE);
        TrainingReader reader = new TrainingReader(store)) {
      commands.accept(reader.environment(), new String[] {"--repository", reader.repository()});
    } catch (IOException | RuntimeException e) {
      // training only: without the reader, the archive is only smaller
    }
  }

  /** Runs {@code thaw restore STORE --progress none ARGS disk.img OUT}. */
  private static void restore(Map<String, String> env, Path out, String[] store, String... args) {
    List<String> rest = new ArrayList<>(List.of("--progress", "none"));
    rest.addAll(List.of(args));
    rest.add("disk.img");
    rest.add(out.toString());
    run(env, with("restore", store, rest.toArray(String[]::new)));
  }

  /** Runs {@code thaw backup ARGS} and returns the snapshot it printed last. */
  private static String backup(ByteArrayOutputStream captured, String... args) {
    captured.reset();
    String[] command = new String[args.length + 1];
    command[0] = "backup";
    System.arraycopy(args, 0, command, 1, args.length);
    run(command);
    String[] lines = captured.toString(StandardCharsets.UTF_8).strip().split("\n");
    return lines[lines.length - 1].strip();
  }

  /** Runs one command line, as {@code thaw} would, ignoring its outcome. */
  private static void run(String... args) {
    run(System.getenv(), args);
  }

  /** As {@link #run(String...)}, credentials read from {@code env}. */
  private static void run(Map<String, String> env, String... args) {
    try {
      Main.commandLine(args, env).execute(args);
    } catch (RuntimeException e) {
      // training only: a failed command still loaded what it loaded
    }
  }

  private static void deleteTree(Path dir) throws IOException {
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
