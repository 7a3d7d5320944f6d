package dev.thaw.cli;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.RetryPolicy;
import dev.thaw.store.ChunkLayout;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.PbsOptions;
import dev.thaw.store.Stores;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import okhttp3.Credentials;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code --store} (or {@code --repository}), {@code --parallel} and the HTTP(S) options, shared by
 * the commands that read a datastore. Credentials come from a file or the environment, never from
 * argv.
 */
final class StoreOptions {
  // not required here: thaw files reads a local volume file without any store (given())
  @Option(
      names = "--store",
      paramLabel = "DS",
      description = {
        "Datastore: a directory, file:///path, http(s)://host/prefix, s3://BUCKET/PREFIX "
            + "or pbs://[[AUTHID@]HOST[:PORT]:]DATASTORE (a Proxmox Backup Server).",
        "Repeat to name mirrors: what the first cannot serve is read from the next."
      })
  List<String> stores;

  @Option(
      names = "--repository",
      paramLabel = "REPO",
      description = {
        "A Proxmox Backup Server datastore as its client names it, [[AUTHID@]HOST[:PORT]:]DATASTORE "
            + "(default when no --store is given: $PBS_REPOSITORY, else one made of $PBS_SERVER, $PBS_PORT, "
            + "$PBS_AUTH_ID and $PBS_DATASTORE). AUTHID is an API token, USER@REALM!NAME; its secret comes "
            + "from $PBS_PASSWORD, a self-signed server's certificate fingerprint from $PBS_FINGERPRINT, each "
            + "also from NAME_FD, NAME_FILE, NAME_CMD or a systemd credential, as the PBS client reads them."
      })
  String repository;

  @Option(
      names = "--server",
      paramLabel = "HOST",
      description =
          "With --datastore instead of --repository, as the PBS client takes them: the Proxmox Backup"
              + " Server's address (default: $PBS_SERVER, else localhost).")
  String server;

  @Option(
      names = "--port",
      paramLabel = "PORT",
      description = "With --datastore: the server's port (default: $PBS_PORT, else 8007).")
  String port;

  @Option(
      names = "--auth-id",
      paramLabel = "AUTHID",
      description = "With --datastore: the API token, USER@REALM!NAME (default: $PBS_AUTH_ID).")
  String authId;

  @Option(
      names = "--datastore",
      paramLabel = "STORE",
      description =
          "The Proxmox Backup Server datastore, with --server, --port and --auth-id instead of"
              + " --repository (default: $PBS_DATASTORE).")
  String datastore;

  @Option(
      names = "--ns",
      paramLabel = "NS",
      description =
          "Proxmox Backup Server namespace (a/b) that snapshot names are relative to (default: $PBS_NAMESPACE, else the root).")
  String namespace;

  @Spec(Spec.Target.MIXEE)
  CommandSpec mixee;

  @Mixin S3Flags s3;

  @Option(
      names = "--rate-limit",
      paramLabel = "BYTES/s",
      description = "Limit all chunk fetches together to this rate, e.g. 50M (default: no limit).")
  String rateLimit;

  @Option(
      names = "--parallel",
      paramLabel = "N",
      defaultValue = "16",
      description = "Chunk fetches in flight (default: ${DEFAULT-VALUE}).")
  int parallel;

  @Option(
      names = "--ca-file",
      paramLabel = "PEM",
      description = "HTTPS: trust the CA certificates in this file instead of the system's.")
  Path caFile;

  @Option(
      names = "--auth-file",
      paramLabel = "FILE",
      description = {
        "HTTP(S) credentials: a first line 'bearer TOKEN' or 'basic USER:PASSWORD'.",
        "Otherwise $THAW_STORE_TOKEN (bearer) or $THAW_STORE_USER and $THAW_STORE_PASSWORD."
      })
  Path authFile;

  @Option(
      names = "--retry-for",
      paramLabel = "DURATION",
      defaultValue = "60s",
      description =
          "How long to keep retrying a chunk fetch that failed in a way that may pass"
              + " (unreachable store, reset, timeout, 5xx, 429), e.g. 30s or 10m; 0: no retries"
              + " (default: ${DEFAULT-VALUE}).",
      converter = DurationConverter.class)
  Duration retryFor;

  /**
   * Where credentials are read from: the process's environment, or (in a detached mount) that
   * environment with the secrets handed over on stdin ({@link Secrets}).
   */
  java.util.Map<String, String> env = System.getenv();

  /** Whether a datastore was named (--store, --repository, or the PBS client's environment). */
  boolean given() {
    return !named().isEmpty();
  }

  ChunkStore open() throws IOException {
    return open(ChunkLayout.DATASTORE);
  }

  /** Opens the store(s), their chunks laid out as {@code layout}. */
  ChunkStore open(ChunkLayout layout) throws IOException {
    if (parallel < 1 || parallel > 256) {
      throw new IllegalArgumentException("--parallel must be between 1 and 256, not " + parallel);
    }
    // snapshot files and listings get the same retries as chunks (the pipeline's)
    return FirstChunkLog.wrap(retryPolicy().retryingFileReads(access().open(specs(), layout)), env);
  }

  /**
   * The stores named: every --store, then --repository or the repository given by its parts (or,
   * when none is given, the PBS client's default repository: {@link
   * PbsEnvironment#repository(PbsEnvironment.Parts)}).
   */
  List<String> specs() {
    List<String> all = named();
    if (all.isEmpty()) { // a usage error (exit 2)
      throw new ParameterException(
          mixee.commandLine(),
          "Missing required option: name a datastore with --store or --repository (or set PBS_REPOSITORY)");
    }
    return all;
  }

  private List<String> named() {
    List<String> all = new ArrayList<>(stores == null ? List.of() : stores);
    PbsEnvironment.Parts parts = new PbsEnvironment.Parts(server, port, authId, datastore);
    if (repository != null && parts.any()) {
      throw new ParameterException(
          mixee.commandLine(),
          "--repository and --server/--port/--auth-id/--datastore name the same thing: give one");
    }
    String repo =
        repository != null
            ? repository
            : parts.any() || all.isEmpty() ? pbsEnvironment().repository(parts).orElse(null) : null;
    if (repo != null && !repo.isBlank()) {
      all.add("pbs://" + repo.strip());
    }
    return all;
  }

  private Stores.Access access;

  /** Everything this command reads: one HTTP client, one rate limit. */
  Stores.Access access() throws IOException {
    if (access == null) {
      access = Stores.access(options());
    }
    return access;
  }

  /**
   * Reads one file named on the command line (a casync index), with the stores' client and under
   * the same retries as chunks.
   */
  Stores.Fetched readFile(String spec, String what) throws IOException {
    try {
      return retryPolicy().call(() -> access().readFile(spec, what));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new java.io.InterruptedIOException("interrupted reading " + spec);
    }
  }

  RetryPolicy retryPolicy() {
    return RetryPolicy.defaults().withWindow(retryFor);
  }

  Stores.Options options() throws IOException {
    long rate = Units.parseRate(rateLimit);
    if (rateLimit != null && rate < 4096) {
      throw new IllegalArgumentException(
          "--rate-limit must be at least 4K bytes/s, not " + rateLimit);
    }
    Stores.Options o =
        Stores.Options.defaults(parallel)
            .withTls(caFile, authorization())
            .withS3(s3.toOptions())
            .withRateLimit(rate)
            .withEnv(env);
    return specs().stream().anyMatch(sp -> sp.toLowerCase(Locale.ROOT).startsWith("pbs://"))
        ? o.withPbs(pbs())
        : o;
  }

  private PbsEnvironment pbsEnvironment;

  /** The PBS client's settings in {@link #env}, each looked up once. */
  private PbsEnvironment pbsEnvironment() {
    if (pbsEnvironment == null) {
      pbsEnvironment = new PbsEnvironment(env);
    }
    return pbsEnvironment;
  }

  /**
   * The Proxmox Backup Server settings: --ns, and from the environment as the PBS client reads it
   * ({@link PbsEnvironment}) the token's secret and the certificate's fingerprint.
   */
  PbsOptions pbs() {
    String ns = namespace != null ? namespace : env.get("PBS_NAMESPACE");
    return new PbsOptions(
        ns, pbsEnvironment().fingerprint().orElse(null), pbsEnvironment().password().orElse(null));
  }

  /** The Authorization header value from --auth-file or the environment, or null. */
  String authorization() throws IOException {
    if (authFile != null) {
      String line =
          Files.readAllLines(authFile, StandardCharsets.UTF_8).stream()
              .filter(l -> !l.isBlank())
              .findFirst()
              .orElse("")
              .strip();
      int sp = line.indexOf(' ');
      String kind = sp > 0 ? line.substring(0, sp).toLowerCase(Locale.ROOT) : "";
      String value = sp > 0 ? line.substring(sp + 1).strip() : "";
      if (kind.equals("bearer") && !value.isEmpty()) {
        return "Bearer " + value;
      }
      if (kind.equals("basic") && value.indexOf(':') > 0) {
        int c = value.indexOf(':');
        return Credentials.basic(
            value.substring(0, c), value.substring(c + 1), StandardCharsets.UTF_8);
      }
      throw new IllegalArgumentException(
          "--auth-file "
              + authFile
              + ": the first line must be 'bearer TOKEN' or 'basic USER:PASSWORD'");
    }
    String token = env.get("THAW_STORE_TOKEN");
    if (token != null && !token.isBlank()) {
      return "Bearer " + token.strip();
    }
    String user = env.get("THAW_STORE_USER");
    if (user != null && !user.isBlank()) {
      String pw = env.get("THAW_STORE_PASSWORD");
      return Credentials.basic(user, pw == null ? "" : pw, StandardCharsets.UTF_8);
    }
    return null;
  }

  FetchPipeline pipeline(ChunkStore s) {
    return new FetchPipeline(
        s, parallel, Runtime.getRuntime().availableProcessors(), retryPolicy());
  }

  /**
   * Chunks a restore or verify keeps requested ahead of writing: every fetch thread busy, every
   * decode slot of the pipeline ({@code 2 x cores}) filled, and two more queued, so that a fetch
   * thread finds the next request waiting. Each requested chunk holds at most one chunk-sized
   * buffer at a time (two while it is decoded), so this also bounds what a restore holds in memory:
   * at 4 MiB chunks, about 4 MiB x (parallel + 2 x cores + 2).
   */
  int window() {
    return parallel + 2 * Runtime.getRuntime().availableProcessors() + 2;
  }

  /** Parses durations for picocli, so that a bad one is a usage error. */
  static final class DurationConverter implements ITypeConverter<Duration> {
    @Override
    public Duration convert(String value) {
      try {
        return Units.parseDuration(value);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
    }
  }
}
