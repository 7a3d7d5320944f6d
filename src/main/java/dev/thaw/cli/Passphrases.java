package dev.thaw.cli;

import java.io.Console;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Where passphrases come from, in order: a file named on the command line, the environment variable
 * {@value #ENV}, for opening a key the PBS client's {@code PBS_ENCRYPTION_PASSWORD} (and its other
 * sources, {@link PbsEnvironment}), a prompt on the terminal. Never from argv.
 */
final class Passphrases {
  static final String ENV = "THAW_KEY_PASSWORD";

  private Passphrases() {}

  /**
   * Whether the console is a terminal to prompt on. From JDK 22 on, {@code System.console()} is
   * never null; {@code Console.isTerminal()} (JDK 22) then tells.
   */
  private static boolean isTerminal(Console c) {
    try {
      return (Boolean) Console.class.getMethod("isTerminal").invoke(c);
    } catch (NoSuchMethodException e) {
      return true; // before JDK 22 a console exists only on a terminal
    } catch (ReflectiveOperationException e) {
      return false;
    }
  }

  /**
   * The passphrase from {@code file}, else {@code env}'s {@value #ENV}, else (unless {@code
   * confirm}, which makes a new key) the PBS client's encryption password, else a prompt on the
   * terminal (twice when {@code confirm}).
   */
  static byte[] read(Path file, java.util.Map<String, String> env, String prompt, boolean confirm) {
    try {
      if (file != null) {
        String s = Files.readString(file, StandardCharsets.UTF_8);
        int nl = s.indexOf('\n');
        return (nl >= 0 ? s.substring(0, nl) : s)
            .replace("\r", "")
            .getBytes(StandardCharsets.UTF_8);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(
          new IOException("cannot read the password file " + file + ": " + e.getMessage()));
    }
    String fromEnv = env.get(ENV);
    if (fromEnv != null) {
      return fromEnv.getBytes(StandardCharsets.UTF_8);
    }
    if (!confirm) { // opening a key: where the PBS client looks for the key's passphrase
      var pbs = new PbsEnvironment(env).encryptionPassword();
      if (pbs.isPresent()) {
        return pbs.get().getBytes(StandardCharsets.UTF_8);
      }
    }
    @SuppressWarnings("SystemConsoleNull") // null before JDK 22; isTerminal() decides after
    Console c = System.console();
    if (c == null || !isTerminal(c)) {
      throw new IllegalStateException(
          "a passphrase is needed: set "
              + ENV
              + (confirm
                  ? ""
                  : " (or " + PbsEnvironment.sources(PbsEnvironment.ENCRYPTION_PASSWORD) + ")")
              + ", use --password-file, or run on a terminal");
    }
    char[] p = c.readPassword("%s", prompt);
    if (p == null) {
      throw new IllegalStateException("no passphrase entered");
    }
    if (confirm) {
      char[] again = c.readPassword("Repeat the passphrase: ");
      if (again == null || !Arrays.equals(p, again)) {
        throw new IllegalStateException("the passphrases differ");
      }
    }
    return new String(p).getBytes(StandardCharsets.UTF_8);
  }
}
