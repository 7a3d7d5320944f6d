package dev.thaw.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The settings {@code proxmox-backup-client} takes from its environment, read as it reads them, so
 * that a shell, script or systemd unit set up for the PBS client points thaw at the same server.
 *
 * <p>A value named {@code BASE} (the token secret {@code PBS_PASSWORD}, {@code PBS_REPOSITORY},
 * {@code PBS_FINGERPRINT}, the key passphrase {@code PBS_ENCRYPTION_PASSWORD}) is the first one set
 * of: {@code BASE} itself, the file descriptor {@code BASE_FD}, the file {@code BASE_FILE}, the
 * standard output of the command {@code BASE_CMD} (split into words as a shell would, run without a
 * shell; it must exit 0), each taken up to its first line break; else the systemd credential {@code
 * proxmox-backup-client.NAME} in {@code $CREDENTIALS_DIRECTORY}, whole. A repository may also be
 * given by its parts ({@link Parts}): on the command line, or without {@code PBS_REPOSITORY} in
 * {@code PBS_SERVER}, {@code PBS_PORT}, {@code PBS_AUTH_ID} and {@code PBS_DATASTORE}.
 *
 * <p>Each value is looked up once (a descriptor can be read once, a command should run once) and
 * kept. Failures name the variable or file, never a value. Not thread-safe: one command's options
 * use it from one thread.
 */
final class PbsEnvironment {
  static final String PASSWORD = "PBS_PASSWORD";
  static final String REPOSITORY = "PBS_REPOSITORY";
  static final String FINGERPRINT = "PBS_FINGERPRINT";
  static final String ENCRYPTION_PASSWORD = "PBS_ENCRYPTION_PASSWORD";

  /** The variables a secret may come from, for messages that tell the user where to set one. */
  static String sources(String base) {
    return base + ", " + base + "_FD, " + base + "_FILE or " + base + "_CMD";
  }

  private final Map<String, String> env;
  private final Path fdDir;
  private final Map<String, Optional<String>> resolved = new HashMap<>();

  /** Reads {@code env}; descriptors are this process's own. */
  PbsEnvironment(Map<String, String> env) {
    this(env, Path.of("/proc/self/fd"));
  }

  /** As {@link #PbsEnvironment(Map)}, descriptor N read as {@code fdDir/N}. */
  PbsEnvironment(Map<String, String> env, Path fdDir) {
    this.env = env;
    this.fdDir = fdDir;
  }

  /** The API token's secret, or empty. */
  Optional<String> password() {
    return secret(PASSWORD, "password");
  }

  /** The key file's passphrase, or empty. */
  Optional<String> encryptionPassword() {
    return secret(ENCRYPTION_PASSWORD, "encryption-password");
  }

  /** The expected certificate fingerprint, or empty (also when set blank). */
  Optional<String> fingerprint() {
    return secret(FINGERPRINT, "fingerprint").filter(s -> !s.isBlank());
  }

  /**
   * A repository given by its parts, as the PBS client's {@code --server}, {@code --port}, {@code
   * --auth-id} and {@code --datastore} give it, or its {@code PBS_SERVER}, {@code PBS_PORT}, {@code
   * PBS_AUTH_ID} and {@code PBS_DATASTORE}; any part may be null.
   */
  record Parts(String server, String port, String authId, String datastore) {
    static final Parts NONE = new Parts(null, null, null, null);

    Parts {
      server = blankToNull(server);
      port = blankToNull(port);
      authId = blankToNull(authId);
      datastore = blankToNull(datastore);
    }

    private static String blankToNull(String s) {
      return s == null || s.isBlank() ? null : s.strip();
    }

    boolean any() {
      return server != null || port != null || authId != null || datastore != null;
    }

    /** These parts, each missing one taken from {@code fallback}. */
    Parts orElse(Parts fallback) {
      return new Parts(
          server != null ? server : fallback.server,
          port != null ? port : fallback.port,
          authId != null ? authId : fallback.authId,
          datastore != null ? datastore : fallback.datastore);
    }

    /**
     * The repository, {@code [[AUTHID@]HOST[:PORT]:]DATASTORE} (an IPv6 address in brackets).
     *
     * @throws IllegalArgumentException without a datastore, or for a port that is no port number
     */
    String repository() {
      if (datastore == null) {
        throw new IllegalArgumentException(
            "a Proxmox Backup Server named by its parts (--server, --port, --auth-id or"
                + " PBS_SERVER, PBS_PORT, PBS_AUTH_ID) needs its datastore: --datastore or"
                + " PBS_DATASTORE (or give the whole repository with --repository or"
                + " PBS_REPOSITORY)");
      }
      if (port != null && !(port.matches("[0-9]{1,5}") && validPort(Integer.parseInt(port)))) {
        throw new IllegalArgumentException(
            "the Proxmox Backup Server's port (--port or PBS_PORT) must be a port number, not "
                + port);
      }
      StringBuilder r = new StringBuilder();
      if (authId != null) {
        r.append(authId).append('@');
      }
      if (server != null || port != null) {
        String host = server == null ? "localhost" : server;
        r.append(host.indexOf(':') >= 0 && !host.startsWith("[") ? "[" + host + "]" : host);
        if (port != null) {
          r.append(':').append(port);
        }
        r.append(':');
      }
      return r.append(datastore).toString();
    }

    private static boolean validPort(int port) {
      return port >= 1 && port <= 65535;
    }
  }

  /**
   * The repository {@code [[AUTHID@]HOST[:PORT]:]DATASTORE} the PBS client would use when its
   * {@code --repository} is not given: with {@code parts} from its command line, those parts, each
   * missing one taken from the environment's ({@code PBS_SERVER} and its siblings); without, {@code
   * PBS_REPOSITORY} (from any of its sources), else the environment's parts; empty when none is
   * set.
   *
   * @throws IllegalArgumentException for parts without a datastore, or a port that is no port
   *     number
   */
  Optional<String> repository(Parts parts) {
    Parts fromEnv =
        new Parts(
            env.get("PBS_SERVER"),
            env.get("PBS_PORT"),
            env.get("PBS_AUTH_ID"),
            env.get("PBS_DATASTORE"));
    if (parts.any()) {
      return Optional.of(parts.orElse(fromEnv).repository());
    }
    Optional<String> url = secret(REPOSITORY, "repository").filter(s -> !s.isBlank());
    if (url.isPresent()) {
      return url.map(String::strip);
    }
    return fromEnv.any() ? Optional.of(fromEnv.repository()) : Optional.empty();
  }

  /** The value of {@code base} from its first source that is set, or empty. */
  Optional<String> secret(String base, String credential) {
    Optional<String> v = resolved.get(base);
    if (v == null) {
      v = Optional.ofNullable(lookUp(base, credential));
      resolved.put(base, v);
    }
    return v;
  }

  private String lookUp(String base, String credential) {
    String direct = env.get(base);
    if (direct != null) {
      return firstLine(direct);
    }
    String fd = env.get(base + "_FD");
    if (fd != null) {
      if (!fd.strip().matches("[0-9]{1,9}")) {
        throw new IllegalArgumentException(
            base + "_FD must be the number of an open file descriptor, not " + fd);
      }
      return firstLine(read(fdDir.resolve(fd.strip()), base + "_FD " + fd.strip()));
    }
    String file = env.get(base + "_FILE");
    if (file != null) {
      return firstLine(read(Path.of(file), base + "_FILE " + file));
    }
    String command = env.get(base + "_CMD");
    if (command != null) {
      return firstLine(run(base + "_CMD", command));
    }
    String dir = env.get("CREDENTIALS_DIRECTORY");
    if (dir != null && !dir.isEmpty()) {
      Path p = Path.of(dir, "proxmox-backup-client." + credential);
      if (Files.exists(p)) {
        // a credential is the file's whole content; a final line break is not part of it
        return read(p, "the credential " + p).replaceFirst("\r?\n\\z", "");
      }
    }
    return null;
  }

  private static String firstLine(String s) {
    int nl = s.indexOf('\n');
    String line = nl >= 0 ? s.substring(0, nl) : s;
    return line.endsWith("\r") ? line.substring(0, line.length() - 1) : line;
  }

  private static String read(Path p, String what) {
    try {
      return Files.readString(p, StandardCharsets.UTF_8);
    } catch (NoSuchFileException e) {
      throw new UncheckedIOException(
          new IOException("cannot read " + what + ": it does not exist", e));
    } catch (AccessDeniedException e) {
      throw new UncheckedIOException(
          new IOException("cannot read " + what + ": permission denied", e));
    } catch (IOException e) {
      throw new UncheckedIOException(
          new IOException("cannot read " + what + ": " + e.getMessage(), e));
    }
  }

  /**
   * Runs {@code command} (split into words, no shell) and returns its standard output. It keeps the
   * terminal's input and error output, so it may ask for a PIN, and is given as long as it takes.
   */
  private static String run(String variable, String command) {
    List<String> words = words(command, variable);
    if (words.isEmpty()) {
      throw new IllegalArgumentException(variable + " names no command");
    }
    ProcessBuilder pb =
        new ProcessBuilder(words)
            .redirectInput(ProcessBuilder.Redirect.INHERIT)
            .redirectError(ProcessBuilder.Redirect.INHERIT);
    try {
      Process p = pb.start();
      byte[] out;
      try (InputStream in = p.getInputStream()) {
        out = in.readAllBytes();
      }
      int status = p.waitFor();
      if (status != 0) {
        throw new IllegalStateException(
            variable + ": " + words.get(0) + " failed (exit status " + status + ")");
      }
      return new String(out, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(
          new IOException(variable + ": cannot run " + words.get(0) + ": " + e.getMessage(), e));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(variable + ": interrupted waiting for " + words.get(0), e);
    }
  }

  /**
   * {@code s} split into words as the Bourne shell splits a command line: blanks separate words;
   * single quotes keep everything; double quotes keep everything but a backslash before {@code $ '
   * " \} or a line break, which stands for that character; elsewhere a backslash stands for the
   * character after it. Nothing is expanded.
   *
   * @throws IllegalArgumentException for an unclosed quote or a backslash at the end
   */
  static List<String> words(String s, String what) {
    List<String> words = new ArrayList<>();
    StringBuilder w = new StringBuilder();
    boolean inWord = false;
    char quote = 0;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (quote == '\'') {
        if (c == '\'') {
          quote = 0;
        } else {
          w.append(c);
        }
      } else if (quote == '"') {
        if (c == '"') {
          quote = 0;
        } else if (c == '\\' && i + 1 < s.length()) {
          char n = s.charAt(++i);
          if ("$'\"\\\n".indexOf(n) < 0) {
            w.append('\\');
          }
          w.append(n);
        } else if (c == '\\') {
          throw new IllegalArgumentException(what + ": unclosed quote");
        } else {
          w.append(c);
        }
      } else if (c == ' ' || c == '\t' || c == '\n') {
        if (inWord) {
          words.add(w.toString());
          w.setLength(0);
          inWord = false;
        }
      } else {
        inWord = true;
        if (c == '\'' || c == '"') {
          quote = c;
        } else if (c == '\\') {
          if (i + 1 == s.length()) {
            throw new IllegalArgumentException(what + ": ends in a lone backslash");
          }
          w.append(s.charAt(++i));
        } else {
          w.append(c);
        }
      }
    }
    if (quote != 0) {
      throw new IllegalArgumentException(what + ": unclosed quote");
    }
    if (inWord) {
      words.add(w.toString());
    }
    return words;
  }
}
