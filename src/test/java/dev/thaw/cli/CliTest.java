package dev.thaw.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CliTest {
  @TempDir Path dir;

  private static CommandRun run(String... args) {
    return CommandRun.of(args);
  }

  @Test
  void everyCommandHasHelp() {
    for (List<String> cmd :
        List.<List<String>>of(
            List.of(),
            List.of("backup"),
            List.of("ls"),
            List.of("restore"),
            List.of("verify"),
            List.of("key"),
            List.of("key", "create"),
            List.of("key", "info"))) {
      String[] args = Stream.concat(cmd.stream(), Stream.of("--help")).toArray(String[]::new);
      assertEquals(0, run(args).code(), String.join(" ", args));
    }
  }

  @Test
  void usageErrorsExit2() {
    assertEquals(2, run("restore", "--store", "x").code());
    assertEquals(2, run("frobnicate").code());
    CommandRun badDuration =
        run(
            "restore",
            "--store",
            "x",
            "--retry-for",
            "soon",
            "vm/1/2026-11-22T03:04:05Z",
            "a.img",
            "t");
    assertEquals(2, badDuration.code());
    assertTrue(
        badDuration.err().contains("--retry-for") && badDuration.err().contains("90s"),
        badDuration.err());
  }

  @Test
  void durations() {
    assertEquals(java.time.Duration.ofSeconds(90), Units.parseDuration("90"));
    assertEquals(java.time.Duration.ofSeconds(90), Units.parseDuration("90s"));
    assertEquals(java.time.Duration.ofMillis(500), Units.parseDuration("500ms"));
    assertEquals(java.time.Duration.ofMinutes(10), Units.parseDuration("10m"));
    assertEquals(java.time.Duration.ZERO, Units.parseDuration("0"));
    assertThrows(IllegalArgumentException.class, () -> Units.parseDuration("999999999h"));
    assertThrows(IllegalArgumentException.class, () -> Units.parseDuration("-5s"));
  }

  @Test
  void keyFileMistakesNameTheFileAndWhatIsWrong() throws Exception {
    String ds = Files.createDirectories(dir.resolve("ds")).toString();
    String snap = "vm/1/2026-01-01T00:00:00Z";
    CommandRun asDir =
        run(
            "restore",
            "--store",
            ds,
            "--keyfile",
            dir.toString(),
            snap,
            "a.img",
            dir.resolve("o").toString());
    assertEquals(1, asDir.code());
    assertTrue(asDir.err().contains("key file " + dir + " is a directory"), asDir.err());
    Path bad = dir.resolve("bad.key");
    Files.writeString(bad, "{\"kdf\": \"scrypt\", \"data\": \"AAAA\"}");
    CommandRun malformed =
        run(
            "restore",
            "--store",
            ds,
            "--keyfile",
            bad.toString(),
            snap,
            "a.img",
            dir.resolve("o").toString());
    assertEquals(1, malformed.code());
    assertTrue(
        malformed.err().contains("key file " + bad)
            && malformed.err().contains("\"kdf\" field must be"),
        malformed.err());
  }

  @Test
  void backupRestoreVerifyAndErrors() throws Exception {
    byte[] img = new byte[9 * 1024 * 1024 + 17];
    new Random(1).nextBytes(img);
    java.util.Arrays.fill(img, 4 * 1024 * 1024, 8 * 1024 * 1024, (byte) 0);
    Path src = dir.resolve("disk.img");
    Files.write(src, img);
    String ds = dir.resolve("ds").toString();
    CommandRun b = run("backup", "--store", ds, "--id", "vm/100", src.toString());
    assertEquals(0, b.code(), b.err());
    String[] lines = b.out().strip().split("\n");
    String snap = lines[lines.length - 1];
    assertTrue(snap.matches("vm/100/\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ"), snap);

    CommandRun ls = run("ls", "--store", ds, "--output", "json", snap);
    assertEquals(0, ls.code(), ls.err());
    assertTrue(ls.out().contains("\"size\" : " + img.length), ls.out());

    Path target = dir.resolve("out.img");
    CommandRun r =
        run("restore", "--progress", "none", "--store", ds, snap, "disk.img", target.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(r.err().contains("2 fetched, 1 zero, 0 already done"), r.err());
    assertEquals(-1, Files.mismatch(src, target));
    assertEquals(0, run("verify", "--store", ds, snap).code());

    CommandRun escape =
        run(
            "restore",
            "--store",
            ds,
            "../../etc/2026-11-22T03:04:05Z",
            "a.img",
            dir.resolve("y").toString());
    assertEquals(1, escape.code());
    assertTrue(escape.err().contains("thaw: error:") && escape.err().contains(".."), escape.err());
    assertFalse(Files.exists(dir.resolve("y")));

    CommandRun noArchive =
        run("restore", "--store", ds, snap, "other.img", dir.resolve("z").toString());
    assertEquals(1, noArchive.code());
    assertTrue(
        noArchive.err().contains("other.img") && noArchive.err().contains("disk.img"),
        noArchive.err());

    // delete one chunk: verify names it and fails, restore fails naming it
    Path chunk;
    try (Stream<Path> s = Files.walk(Path.of(ds, ".chunks"))) {
      chunk =
          s.filter(Files::isRegularFile)
              .filter(p -> !p.getFileName().toString().startsWith("bb9f8df6"))
              .findFirst()
              .orElseThrow();
    }
    Files.delete(chunk);
    CommandRun v = run("verify", "--store", ds, snap);
    assertEquals(1, v.code());
    assertTrue(v.out().contains("missing chunk " + chunk.getFileName()), v.out());
    CommandRun r2 =
        run(
            "restore",
            "--progress",
            "none",
            "--store",
            ds,
            snap,
            "disk.img",
            dir.resolve("out2.img").toString());
    assertEquals(1, r2.code());
    assertTrue(
        r2.err().contains(chunk.getFileName().toString()) && r2.err().contains("missing"),
        r2.err());
  }

  @Test
  void casyncImagesRestoreAndVerifyFromADirectoryAndMisuseIsAUsageError() throws Exception {
    dev.thaw.testing.MemoryStore mem = new dev.thaw.testing.MemoryStore();
    byte[] image = dev.thaw.testing.CasyncFixtures.image(1 << 20, 16 * 1024, 5);
    var chunks =
        dev.thaw.testing.CasyncFixtures.chunk(
            image, 2048, 16 * 1024, true, dev.thaw.testing.CasyncFixtures.Compression.ZSTD, mem, 5);
    Path castr = dir.resolve("img.castr");
    for (dev.thaw.format.Digest d : chunks.ids()) {
      Path f = castr.resolve(d.hex().substring(0, 4)).resolve(d.hex() + ".cacnk");
      Files.createDirectories(f.getParent());
      Files.write(f, mem.raw(d));
    }
    Path caibx = dir.resolve("img.caibx");
    Files.write(caibx, dev.thaw.testing.CasyncFixtures.index(chunks, 2048, 4096, 16 * 1024, true));
    String idx = caibx.toString();
    String st = castr.toString();
    Path out = dir.resolve("out.raw");
    CommandRun r =
        run("restore", "--progress", "none", "--index", idx, "--store", st, out.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(java.util.Arrays.equals(image, Files.readAllBytes(out)));
    CommandRun v = run("verify", "--index", idx, "--store", st);
    assertEquals(0, v.code(), v.err());
    assertTrue(v.err().contains("verified img: "), v.err());

    assertEquals(
        2,
        run("restore", "--index", idx, "--store", st, "vm/1/2026-01-01T00:00:00Z", "a.img", "t")
            .code());
    assertEquals(
        2, run("verify", "--index", idx, "--store", st, "vm/1/2026-01-01T00:00:00Z").code());
    assertEquals(2, run("verify", "--store", st).code());
    CommandRun keyed = run("restore", "--index", idx, "--store", st, "--keyfile", "k.json", "t");
    assertEquals(2, keyed.code());
    assertTrue(keyed.err().contains("--keyfile does not apply"), keyed.err());
  }
}
