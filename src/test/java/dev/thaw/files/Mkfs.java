package dev.thaw.files;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** Runs the tools that make filesystems for the reader tests; a test without them is skipped. */
final class Mkfs {
  private Mkfs() {}

  static void need(String... programs) {
    for (String p : programs) {
      assumeTrue(new Tool(p, p, 10).find() != null, p + " is not installed");
    }
  }

  /**
   * Runs {@code cmd} in {@code dir} with {@code env} (NAME=VALUE) and fails the test if it fails.
   */
  static void run(Path dir, List<String> env, String... cmd)
      throws IOException, InterruptedException {
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true);
    for (String e : env) {
      int eq = e.indexOf('=');
      pb.environment().put(e.substring(0, eq), e.substring(eq + 1));
    }
    Path log = Files.createTempFile(dir, "cmd", ".log");
    pb.redirectOutput(log.toFile());
    int rc = pb.start().waitFor();
    assertEquals(0, rc, String.join(" ", cmd) + ": " + Files.readString(log));
  }

  /** Every path under {@code root}, relative, sorted. */
  static List<String> walk(Path root) throws IOException {
    List<String> out = new ArrayList<>();
    try (Stream<Path> s = Files.walk(root)) {
      s.forEach(p -> out.add(root.relativize(p).toString()));
    }
    out.sort(null);
    return out;
  }
}
