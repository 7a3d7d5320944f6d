package dev.thaw.cli;

import dev.thaw.restore.ServeStatus;
import dev.thaw.volume.VolumeReport;
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
@Command(
    name = "status",
    mixinStandardHelpOptions = true,
    description = {
      "Show a mount's or an NBD server's images: restore progress (percent, rate, ETA), "
          + "cache and fetches. --json prints MOUNTPOINT/.thaw/status (or SOCKET.status) as it is."
    })
final class StatusCommand implements Callable<Integer> {
  @Option(names = "--json", description = "Print the status document as JSON.")
  boolean json;

  @Parameters(
      paramLabel = "MOUNTPOINT|SOCKET",
      description = "A thaw mount, the socket of 'thaw serve', or its status file.")
  Path mountpoint;

  @Override
  public Integer call() throws IOException {
    Path file =
        Files.isDirectory(mountpoint)
            ? mountpoint.resolve(".thaw").resolve("status")
            : Files.isRegularFile(mountpoint) ? mountpoint : Path.of(mountpoint + ".status");
    byte[] doc;
    try {
      doc = Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      throw new IllegalArgumentException(
          mountpoint + " is not a thaw mount or NBD server (no " + file + ")");
    }
    ServeStatus s = ServeStatus.parse(doc);
    if (s.server() != null && ProcessHandle.of(s.server().pid()).isEmpty()) {
      throw new IllegalArgumentException(
          "thaw serve (pid "
              + s.server().pid()
              + ") is not running any more; "
              + file
              + " is stale");
    }
    if (json) {
      System.out.write(doc);
      System.out.flush();
      return 0;
    }
    System.out.println("store:    " + s.store());
    if (s.snapshot() != null) {
      System.out.println("snapshot: " + s.snapshot());
    }
    ServeStatus.Server server = s.server();
    if (server != null) {
      System.out.printf(
          "nbd:      %d connections (%d so far), %d requests, %s read, %s written, %d errors%n",
          server.connections(),
          server.connectionsTotal(),
          server.requests(),
          Units.bytes(server.bytesRead()),
          Units.bytes(server.bytesWritten()),
          server.errors());
      for (String u : server.uris()) {
        System.out.println("          " + u);
      }
    }
    ServeStatus.Cache c = s.cache();
    ServeStatus.Pipeline p = s.pipeline();
    System.out.printf(
        "cache:    %s of %s; fetches: %d in flight, %d queued, %d retries, %d errors; latency p50 %.1f ms, p99 %.1f ms%n",
        Units.bytes(c.bytes()),
        Units.bytes(c.maxBytes()),
        p.fetchesInFlight(),
        p.queued(),
        p.retries(),
        p.errors(),
        p.fetchLatencyP50Ms(),
        p.fetchLatencyP99Ms());
    for (ServeStatus.ImageStatus im : s.images()) {
      System.out.printf(
          "%s: %s, %d/%d chunks cached, %s fetched, hit rate %.0f%%, %d errors%n",
          im.path(),
          Units.bytes(im.size()),
          im.chunksCached(),
          im.chunksTotal(),
          Units.bytes(im.bytesFetched()),
          100 * im.cacheHitRate(),
          im.errors());
      if (im.volumes() != null) {
        printVolumes(im.volumes());
      }
      ServeStatus.Restore r = im.restore();
      if (r != null) {
        StringBuilder line = new StringBuilder("  " + r.mode() + ": " + r.state());
        line.append(
            String.format(
                ", %.1f%% (%d/%d chunks)", r.percent(), r.chunksPresent(), r.chunksTotal()));
        if (r.rateBytesPerS() > 0) {
          line.append(", ").append(Units.bytes(r.rateBytesPerS())).append("/s");
        }
        if (r.etaS() != null) {
          line.append(", ETA ").append(Units.clock(r.etaS()));
        }
        line.append(", ").append(r.guestWrites()).append(" guest writes");
        if (r.error() != null) {
          line.append("\n  error: ").append(r.error());
        }
        System.out.println(line);
      }
    }
    return 0;
  }

  /** One line for the table and its volumes, one per warning. */
  private static void printVolumes(VolumeReport v) {
    StringBuilder line =
        new StringBuilder(
            "  "
                + (v.table().equals("none")
                    ? "no partition table"
                    : v.table().toUpperCase(java.util.Locale.ROOT) + " partition table"));
    if (!v.filesystem().isEmpty()) {
      line.append(", the whole image holds ").append(v.filesystem());
    }
    for (VolumeReport.Item i : v.volumes()) {
      line.append("\n    ").append(i.name()).append(": ");
      if (!i.exposed()) {
        line.append("not exposed: ").append(i.reason());
        continue;
      }
      line.append(Units.bytes(i.size())).append(", ").append(i.type());
      if (!i.filesystem().isEmpty()) {
        line.append(", ").append(i.filesystem());
      }
      if (!i.label().isEmpty()) {
        line.append(", \"").append(i.label()).append('"');
      }
    }
    System.out.println(line);
    for (String w : v.warnings()) {
      System.out.println("  warning: " + w);
    }
  }
}
