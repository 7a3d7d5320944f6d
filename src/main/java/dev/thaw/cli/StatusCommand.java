package dev.thaw.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code thaw status MOUNTPOINT|SOCKET}: a mount's {@code .thaw/status}, or the status file of
 * {@code thaw serve} ({@code SOCKET.status}, or a status file named directly), for people.
 */
@Command(name = "status", mixinStandardHelpOptions = true,
    description = {"Show a mount's or an NBD server's images: restore progress (percent, rate, ETA),",
        "cache and fetches. --json prints MOUNTPOINT/.thaw/status (or SOCKET.status) as it is."})
final class StatusCommand implements Callable<Integer> {
  @Option(names = "--json", description = "Print the status document as JSON.")
  boolean json;

  @Parameters(paramLabel = "MOUNTPOINT|SOCKET",
      description = "A thaw mount, the socket of 'thaw serve', or its status file.")
  Path mountpoint;

  @Override
  public Integer call() throws IOException {
    Path file = Files.isDirectory(mountpoint) ? mountpoint.resolve(".thaw").resolve("status")
        : Files.isRegularFile(mountpoint) ? mountpoint : Path.of(mountpoint + ".status");
    byte[] doc;
    try {
      doc = Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      throw new IllegalArgumentException(mountpoint + " is not a thaw mount or NBD server (no " + file + ")");
    }
    JsonNode s = new ObjectMapper().readTree(doc);
    JsonNode server = s.path("server");
    if (!server.isMissingNode() && ProcessHandle.of(server.path("pid").asLong()).isEmpty()) {
      throw new IllegalArgumentException("thaw serve (pid " + server.path("pid").asLong()
          + ") is not running any more; " + file + " is stale");
    }
    if (json) {
      System.out.write(doc);
      System.out.flush();
      return 0;
    }
    System.out.println("store:    " + s.path("store").asText());
    if (s.has("snapshot")) {
      System.out.println("snapshot: " + s.path("snapshot").asText());
    }
    if (!server.isMissingNode()) {
      System.out.printf("nbd:      %d connections (%d so far), %d requests, %s read, %s written, %d errors%n",
          server.path("connections").asLong(), server.path("connections_total").asLong(),
          server.path("requests").asLong(), Units.bytes(server.path("bytes_read").asLong()),
          Units.bytes(server.path("bytes_written").asLong()), server.path("errors").asLong());
      for (JsonNode u : server.path("uris")) {
        System.out.println("          " + u.asText());
      }
    }
    JsonNode c = s.path("cache");
    JsonNode p = s.path("pipeline");
    System.out.printf("cache:    %s of %s; fetches: %d in flight, %d queued, %d retries, %d errors; latency p50 %.1f ms, p99 %.1f ms%n",
        Units.bytes(c.path("bytes").asLong()), Units.bytes(c.path("max_bytes").asLong()),
        p.path("fetches_in_flight").asLong(), p.path("queued").asLong(), p.path("retries").asLong(),
        p.path("errors").asLong(), p.path("fetch_latency_p50_ms").asDouble(), p.path("fetch_latency_p99_ms").asDouble());
    for (JsonNode im : s.path("images")) {
      System.out.printf("%s: %s, %d/%d chunks cached, %s fetched, hit rate %.0f%%, %d errors%n",
          im.path("path").asText(), Units.bytes(im.path("size").asLong()), im.path("chunks_cached").asLong(),
          im.path("chunks_total").asLong(), Units.bytes(im.path("bytes_fetched").asLong()),
          100 * im.path("cache_hit_rate").asDouble(), im.path("errors").asLong());
      JsonNode r = im.path("restore");
      if (!r.isMissingNode()) {
        StringBuilder line = new StringBuilder("  " + r.path("mode").asText() + ": " + r.path("state").asText());
        line.append(String.format(", %.1f%% (%d/%d chunks)", r.path("percent").asDouble(),
            r.path("chunks_present").asLong(), r.path("chunks_total").asLong()));
        if (r.path("rate_bytes_per_s").asLong() > 0) {
          line.append(", ").append(Units.bytes(r.path("rate_bytes_per_s").asLong())).append("/s");
        }
        if (r.has("eta_s")) {
          line.append(", ETA ").append(Units.clock(r.path("eta_s").asLong()));
        }
        line.append(", ").append(r.path("guest_writes").asLong()).append(" guest writes");
        if (r.has("error")) {
          line.append("\n  error: ").append(r.path("error").asText());
        }
        System.out.println(line);
      }
    }
    return 0;
  }
}
