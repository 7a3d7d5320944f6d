package dev.thaw.cli;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

/**
 * The run from which the launcher ({@code mount-scripts/thaw}) makes its start-up archive: once per
 * JDK and jar, in the background, it runs this class under {@code -XX:ArchiveClassesAtExit} (JDK 17
 * to 24: a class-data sharing archive) or {@code -XX:AOTCacheOutput} (JDK 25 and later: an
 * ahead-of-time cache), and later commands map the classes it loaded instead of loading, parsing
 * and verifying them again.
 *
 * <p>It runs thaw's own commands, quietly, on a small image in a directory of its own below the
 * directory given, which it deletes: backup, ls, verify, restore (plain and encrypted), a mount
 * rehearsed (its reads driven through the FUSE callbacks, no kernel mount), the help of every
 * command; and it loads the classes of an NBD server and the HTTP and S3 stores without starting
 * any. It writes nothing else, and reaches no network.
 */
public final class StartupTraining {
  private StartupTraining() {}

  /** {@code StartupTraining DIR}: trains in a new directory below DIR. */
  public static void main(String[] args) throws IOException {
    Path dir = Files.createTempDirectory(Path.of(args[0]), "training-");
    PrintStream out = System.out;
    PrintStream err = System.err;
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
    System.setErr(new PrintStream(OutputStream.nullOutputStream(), true, StandardCharsets.UTF_8));
    try {
      train(dir, captured);
    } finally {
      System.setOut(out);
      System.setErr(err);
      deleteTree(dir);
    }
  }

  private static void train(Path dir, ByteArrayOutputStream captured) throws IOException {
    byte[] image = new byte[8 << 20];
    new Random(1).nextBytes(image);
    java.util.Arrays.fill(image, 4 << 20, 8 << 20, (byte) 0);
    Path img = Files.write(dir.resolve("disk.img"), image);
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
    run(
        "restore",
        "--progress",
        "none",
        "--store",
        ds,
        snapshot,
        "disk.img",
        dir.resolve("out.img").toString());
    Path mountpoint = Files.createDirectory(dir.resolve("mnt"));
    run("mount", "--rehearse", "--store", ds, snapshot, mountpoint.toString());
    run("key", "create", "--kdf", "none", key);
    String encrypted =
        backup(captured, "--store", ds, "--id", "vm/101", "--keyfile", key, img.toString());
    run(
        "restore",
        "--progress",
        "none",
        "--store",
        ds,
        "--keyfile",
        key,
        encrypted,
        "disk.img",
        dir.resolve("out2.img").toString());
    // what a mount, a server and the remote stores load before they do anything
    for (String c :
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
            "dev.thaw.nbd.NbdServer",
            "dev.thaw.store.HttpStore",
            "dev.thaw.store.S3Store",
            "ru.serce.jnrfuse.FuseStubFS",
            "ru.serce.jnrfuse.AbstractFuseFS",
            "okhttp3.OkHttpClient")) {
      try {
        Class.forName(c, false, StartupTraining.class.getClassLoader());
      } catch (ClassNotFoundException | LinkageError e) {
        // a class that moved: the archive is only smaller
      }
    }
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
    try {
      Main.commandLine(args).execute(args);
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
