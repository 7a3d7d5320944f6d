package dev.thaw.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The environment variables that hold secrets, and how a detached mount process gets them: not
 * in its environment, where {@code /proc/PID/environ} would show them for the whole life of the
 * mount, but once, on its stdin, as {@code NAME=base64} lines ended by an empty line. The key's
 * passphrase travels the same way under {@link #PASSPHRASE}.
 */
final class Secrets {
  /** Variables a detached process never inherits. */
  static final List<String> NAMES = List.of(Passphrases.ENV, "THAW_STORE_TOKEN",
      "THAW_STORE_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN");
  /** The handed-over entry that carries the key file's passphrase. */
  static final String PASSPHRASE = "passphrase";

  private Secrets() {}

  /** Removes every secret from a child's environment. */
  static void removeFrom(Map<String, String> childEnv) {
    NAMES.forEach(childEnv::remove);
  }

  /** Writes the secrets of {@code env} (and the passphrase, if any) for {@link #receive}. */
  static void send(OutputStream out, Map<String, String> env, byte[] passphrase) throws IOException {
    StringBuilder sb = new StringBuilder();
    for (String name : NAMES) {
      String v = env.get(name);
      if (v != null) {
        sb.append(name).append('=').append(encode(v.getBytes(StandardCharsets.UTF_8))).append('\n');
      }
    }
    if (passphrase != null) {
      sb.append(PASSPHRASE).append('=').append(encode(passphrase)).append('\n');
    }
    sb.append('\n');
    out.write(sb.toString().getBytes(StandardCharsets.US_ASCII));
    out.flush();
  }

  /** Reads what {@link #send} wrote; values are UTF-8 text, the passphrase raw bytes. */
  static Map<String, byte[]> receive(InputStream in) throws IOException {
    BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.US_ASCII));
    Map<String, byte[]> m = new HashMap<>();
    for (String line = r.readLine(); line != null && !line.isEmpty(); line = r.readLine()) {
      int eq = line.indexOf('=');
      if (eq <= 0) {
        throw new IOException("malformed secret handover");
      }
      m.put(line.substring(0, eq), Base64.getDecoder().decode(line.substring(eq + 1)));
    }
    return m;
  }

  /** {@code env} with the handed-over variables added (the passphrase is not a variable). */
  static Map<String, String> overlay(Map<String, String> env, Map<String, byte[]> received) {
    Map<String, String> m = new HashMap<>(env);
    received.forEach((k, v) -> {
      if (NAMES.contains(k)) {
        m.put(k, new String(v, StandardCharsets.UTF_8));
      }
    });
    return m;
  }

  private static String encode(byte[] b) {
    return Base64.getEncoder().encodeToString(b);
  }
}
