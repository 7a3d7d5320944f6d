package dev.thaw.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The environment thaw's commands read credentials from: the process's own, plus the secrets that
 * the launcher ({@code mount-scripts/thaw}) moved out of it. The launcher takes {@link #NAMES} out
 * of the environment, where {@code /proc/PID/environ} would show them for the life of the process
 * (a mount or an NBD server lives long), and hands them over once on a pipe whose descriptor the
 * system property {@value #FD_PROPERTY} names, as {@code NAME=base64} lines ended by an empty line.
 */
final class Secrets {
  /** Variables the launcher hands over on a pipe instead of in the environment. */
  static final List<String> NAMES =
      List.of(
          Passphrases.ENV,
          "THAW_STORE_TOKEN",
          "THAW_STORE_PASSWORD",
          "AWS_SECRET_ACCESS_KEY",
          "AWS_SESSION_TOKEN",
          PbsEnvironment.PASSWORD,
          PbsEnvironment.ENCRYPTION_PASSWORD);

  /** The system property naming the descriptor of the launcher's pipe. */
  static final String FD_PROPERTY = "thaw.secrets.fd";

  private Secrets() {}

  /** The process's environment with the handed-over secrets added (read once, now). */
  static Map<String, String> environment() {
    String fd = System.getProperty(FD_PROPERTY);
    if (fd == null || !fd.matches("[0-9]+")) {
      return System.getenv();
    }
    try (InputStream in = Files.newInputStream(Path.of("/proc/self/fd", fd))) {
      return overlay(System.getenv(), receive(in));
    } catch (IOException e) {
      throw new UncheckedIOException(
          new IOException(
              "cannot read the secrets the launcher handed over: " + e.getMessage(), e));
    }
  }

  /** Reads {@code NAME=base64} lines up to an empty line or the end. */
  static Map<String, String> receive(InputStream in) throws IOException {
    BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.US_ASCII));
    Map<String, String> m = new HashMap<>();
    for (String line = r.readLine(); line != null && !line.isEmpty(); line = r.readLine()) {
      int eq = line.indexOf('=');
      if (eq <= 0) {
        throw new IOException("malformed secret handover");
      }
      m.put(
          line.substring(0, eq),
          new String(Base64.getDecoder().decode(line.substring(eq + 1)), StandardCharsets.UTF_8));
    }
    return m;
  }

  /** {@code env} with the handed-over variables of {@link #NAMES} added. */
  static Map<String, String> overlay(Map<String, String> env, Map<String, String> received) {
    Map<String, String> m = new HashMap<>(env);
    received.forEach(
        (k, v) -> {
          if (NAMES.contains(k)) {
            m.put(k, v);
          }
        });
    return Map.copyOf(m);
  }
}
