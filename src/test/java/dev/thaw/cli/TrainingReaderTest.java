package dev.thaw.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The start-up training's reader serves what thaw's commands over the PBS reader protocol need to
 * run to their end: a training that failed early would leave their classes out of the archive
 * without a word.
 */
class TrainingReaderTest {
  @TempDir Path dir;

  record Run(int code, String out, String err) {}

  private static Run run(Map<String, String> env, String... args) {
    StringWriter err = new StringWriter();
    PrintStream oldOut = System.out;
    PrintStream oldErr = System.err;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream sysErr = new ByteArrayOutputStream();
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    System.setErr(new PrintStream(sysErr, true, StandardCharsets.UTF_8));
    try {
      CommandLine cl = Main.commandLine(args, env);
      cl.setErr(new PrintWriter(err, true));
      int code = cl.execute(args);
      return new Run(
          code,
          out.toString(StandardCharsets.UTF_8),
          err + sysErr.toString(StandardCharsets.UTF_8));
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
    }
  }

  @Test
  void lsVerifyRestoreAndARehearsedMountRunThroughIt() throws Exception {
    byte[] image = new byte[12 << 20];
    new Random(7).nextBytes(image);
    Path src = Files.write(dir.resolve("disk.img"), image);
    Path ds = dir.resolve("ds");
    Run b = run(Map.of(), "backup", "--store", ds.toString(), "--id", "vm/100", src.toString());
    assertEquals(0, b.code(), b.err());
    String snapshot = b.out().strip().lines().reduce((x, y) -> y).orElseThrow().strip();

    try (TrainingReader reader = new TrainingReader(ds)) {
      Map<String, String> env =
          Map.of("PBS_PASSWORD", "training", "PBS_FINGERPRINT", reader.fingerprint());
      String repo = "thaw@pbs!training@127.0.0.1:" + reader.port() + ":training";

      Run ls = run(env, "ls", "--repository", repo);
      assertEquals(0, ls.code(), ls.err());
      assertTrue(ls.out().contains(snapshot), ls.out());

      Run verify = run(env, "verify", "--repository", repo, snapshot);
      assertEquals(0, verify.code(), verify.err());

      Path out = dir.resolve("out.img");
      Run restore =
          run(
              env,
              "restore",
              "--progress",
              "none",
              "--repository",
              repo,
              snapshot,
              "disk.img",
              out.toString());
      assertEquals(0, restore.code(), restore.err());
      assertArrayEquals(image, Files.readAllBytes(out));

      Path mnt = Files.createDirectory(dir.resolve("mnt"));
      Run mount = run(env, "mount", "--rehearse", "--repository", repo, snapshot, mnt.toString());
      assertEquals(0, mount.code(), mount.err());

      // the certificate is pinned: another fingerprint is refused
      String other =
          (reader.fingerprint().startsWith("00") ? "11" : "00") + reader.fingerprint().substring(2);
      Run refused =
          run(
              Map.of("PBS_PASSWORD", "training", "PBS_FINGERPRINT", other),
              "ls",
              "--repository",
              repo);
      assertNotEquals(0, refused.code());
      assertTrue(refused.err().contains("does not match"), refused.err());
    }
  }
}
