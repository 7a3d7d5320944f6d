package dev.thaw.cli;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.RetryPolicy;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.Stores;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import okhttp3.Credentials;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code --store}, {@code --parallel} and the HTTP(S) options, shared by the commands that read a
 * datastore. Credentials come from a file or the environment, never from argv.
 */
final class StoreOptions {
  @Option(names = "--store", required = true, paramLabel = "DS",
      description = "Datastore: a directory, file:///path, or http(s)://host/prefix.")
  String store;

  @Option(names = "--parallel", paramLabel = "N", defaultValue = "16",
      description = "Chunk fetches in flight (default: ${DEFAULT-VALUE}).")
  int parallel;

  @Option(names = "--ca-file", paramLabel = "PEM",
      description = "HTTPS: trust the CA certificates in this file instead of the system's.")
  Path caFile;

  @Option(names = "--auth-file", paramLabel = "FILE",
      description = {"HTTP(S) credentials: a first line 'bearer TOKEN' or 'basic USER:PASSWORD'.",
          "Otherwise $THAW_STORE_TOKEN (bearer) or $THAW_STORE_USER and $THAW_STORE_PASSWORD."})
  Path authFile;

  @Option(names = "--retry-for", paramLabel = "DURATION", defaultValue = "60s",
      description = "How long to keep retrying a chunk fetch that failed in a way that may pass"
          + " (unreachable store, reset, timeout, 5xx, 429), e.g. 30s or 10m; 0: no retries"
          + " (default: ${DEFAULT-VALUE}).",
      converter = DurationConverter.class)
  Duration retryFor;

  ChunkStore open() throws IOException {
    if (parallel < 1 || parallel > 256) {
      throw new IllegalArgumentException("--parallel must be between 1 and 256, not " + parallel);
    }
    return Stores.open(store, Stores.Options.defaults(parallel).withTls(caFile, authorization()));
  }

  /** The Authorization header value from --auth-file or the environment, or null. */
  String authorization() throws IOException {
    if (authFile != null) {
      String line = Files.readAllLines(authFile, StandardCharsets.UTF_8).stream()
          .filter(l -> !l.isBlank()).findFirst().orElse("").strip();
      int sp = line.indexOf(' ');
      String kind = sp > 0 ? line.substring(0, sp).toLowerCase(Locale.ROOT) : "";
      String value = sp > 0 ? line.substring(sp + 1).strip() : "";
      if (kind.equals("bearer") && !value.isEmpty()) {
        return "Bearer " + value;
      }
      if (kind.equals("basic") && value.indexOf(':') > 0) {
        int c = value.indexOf(':');
        return Credentials.basic(value.substring(0, c), value.substring(c + 1), StandardCharsets.UTF_8);
      }
      throw new IllegalArgumentException("--auth-file " + authFile
          + ": the first line must be 'bearer TOKEN' or 'basic USER:PASSWORD'");
    }
    String token = System.getenv("THAW_STORE_TOKEN");
    if (token != null && !token.isBlank()) {
      return "Bearer " + token.strip();
    }
    String user = System.getenv("THAW_STORE_USER");
    if (user != null && !user.isBlank()) {
      String pw = System.getenv("THAW_STORE_PASSWORD");
      return Credentials.basic(user, pw == null ? "" : pw, StandardCharsets.UTF_8);
    }
    return null;
  }

  FetchPipeline pipeline(ChunkStore s) {
    return new FetchPipeline(s, parallel, Runtime.getRuntime().availableProcessors(),
        RetryPolicy.defaults().withWindow(retryFor));
  }

  /** Chunks a restore or verify keeps requested ahead of writing. */
  int window() {
    return parallel * 2 + Runtime.getRuntime().availableProcessors();
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
