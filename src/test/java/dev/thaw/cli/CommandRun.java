package dev.thaw.cli;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import picocli.CommandLine;

/**
 * One thaw command line run in this JVM as {@code thaw} would run it: its exit code, what it
 * printed on standard output, and on standard error (picocli's and the process's).
 */
record CommandRun(int code, String out, String err) {
  /** Runs {@code args} with the process's environment. */
  static CommandRun of(String... args) {
    return of(Secrets.environment(), args);
  }

  /**
   * Backs {@code source} up into the datastore directory {@code ds} as {@code vm/100} and returns
   * the new snapshot's name; fails the test if the backup fails.
   */
  static String backup(Path ds, Path source) {
    CommandRun b =
        of(Map.of(), "backup", "--store", ds.toString(), "--id", "vm/100", source.toString());
    if (b.code() != 0) {
      throw new AssertionError("backup exited " + b.code() + ": " + b.err());
    }
    return b.out().strip().lines().reduce((x, y) -> y).orElseThrow().strip();
  }

  /** Runs {@code args}, credentials read from {@code env}. */
  static CommandRun of(Map<String, String> env, String... args) {
    StringWriter err = new StringWriter();
    PrintStream oldOut = System.out;
    PrintStream oldErr = System.err;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream sysErr = new ByteArrayOutputStream();
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    System.setErr(new PrintStream(sysErr, true, StandardCharsets.UTF_8));
    try {
      // after the redirection: picocli binds System.err when built
      CommandLine cl = Main.commandLine(args, env);
      cl.setErr(new PrintWriter(err, true));
      int code = cl.execute(args);
      return new CommandRun(
          code,
          out.toString(StandardCharsets.UTF_8),
          err + sysErr.toString(StandardCharsets.UTF_8));
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
    }
  }
}
