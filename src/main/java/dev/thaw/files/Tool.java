package dev.thaw.files;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs an external reader (debugfs, 7zz) with its output captured; never through a shell. */
final class Tool {
  /** What a run printed and how it ended. */
  record Result(int exit, String out, String err) {}

  private final String program;
  private final String debianPackage;
  private final long timeoutSeconds;

  Tool(String program, String debianPackage, long timeoutSeconds) {
    this.program = program;
    this.debianPackage = debianPackage;
    this.timeoutSeconds = timeoutSeconds;
  }

  /** The program's path on $PATH (also /sbin, /usr/sbin), or null. */
  Path find() {
    List<String> dirs =
        new ArrayList<>(List.of(System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")));
    dirs.addAll(List.of("/usr/sbin", "/sbin", "/usr/bin", "/bin"));
    for (String d : dirs) {
      Path p = Path.of(d.isEmpty() ? "." : d, program);
      if (Files.isExecutable(p)) {
        return p;
      }
    }
    return null;
  }

  Result run(List<String> args) throws IOException {
    Path exe = find();
    if (exe == null) {
      throw new FilesException(
          "this needs "
              + program
              + " (Debian package "
              + debianPackage
              + "): apt-get install "
              + debianPackage);
    }
    List<String> cmd = new ArrayList<>();
    cmd.add(exe.toString());
    cmd.addAll(args);
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().put("LC_ALL", "C.UTF-8");
    pb.environment().put("TZ", "UTC");
    pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    Path out = Files.createTempFile("thaw-" + program, ".out");
    Path err = Files.createTempFile("thaw-" + program, ".err");
    try {
      pb.redirectOutput(out.toFile()).redirectError(err.toFile());
      Process p = pb.start();
      try {
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
          p.destroyForcibly();
          throw new IOException(program + " did not finish within " + timeoutSeconds + " s");
        }
      } catch (InterruptedException e) {
        p.destroyForcibly();
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException(program + " interrupted");
      }
      // names need not be UTF-8: decode leniently
      return new Result(
          p.exitValue(),
          new String(Files.readAllBytes(out), StandardCharsets.UTF_8),
          new String(Files.readAllBytes(err), StandardCharsets.UTF_8));
    } finally {
      Files.deleteIfExists(out);
      Files.deleteIfExists(err);
    }
  }
}
