package dev.thaw.restore;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.volume.Extent;
import dev.thaw.volume.VolumeReport;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class ServeStatusTest {
  @Test
  void theDocumentRoundTripsWithSnakeCaseNamesAndLeavesOutWhatIsAbsent() throws Exception {
    ServeStatus s =
        new ServeStatus(
            "/srv/ds",
            "vm/100/2026-11-22T03:04:05Z",
            new ServeStatus.Server(
                42, List.of("nbd+unix:///a.img?socket=/run/x"), 1, 2, 3, 4, 5, 0),
            new ServeStatus.Cache(1, 2, 3, 4),
            new ServeStatus.Pipeline(5, 6, 7, 8, 9.5, 10.5, 11, 12),
            List.of(
                new ServeStatus.ImageStatus(
                    "a.img",
                    100,
                    2,
                    1,
                    1,
                    50,
                    0.5,
                    3,
                    60,
                    0.1,
                    0.2,
                    1,
                    2,
                    0,
                    new ServeStatus.Restore(
                        "live-restore", "running", 1, 2, 50.0, 1000, 1.5, 42L, 7, null),
                    null),
                new ServeStatus.ImageStatus(
                    "b.img",
                    10,
                    1,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    null,
                    new VolumeReport(
                        "b.img",
                        10,
                        "mbr",
                        "",
                        List.of(
                            new VolumeReport.Item(
                                "b.img.p1",
                                "partition",
                                "mbr",
                                "0x83",
                                "Linux",
                                "",
                                "",
                                1048576,
                                4096,
                                "ext4",
                                true,
                                null,
                                List.of(new Extent(1048576, 4096))),
                            new VolumeReport.Item(
                                "b.img.p2",
                                "partition",
                                "mbr",
                                "0x05",
                                "Extended",
                                "",
                                "",
                                -1,
                                512,
                                "",
                                false,
                                "an extended partition holds other partitions",
                                List.of())),
                        List.of("a warning")))));
    String json = new String(s.toJson(), StandardCharsets.UTF_8);
    for (String name :
        List.of(
            "\"max_bytes\"",
            "\"read_ahead_reserved_bytes\"",
            "\"fetches_in_flight\"",
            "\"fetch_latency_p50_ms\"",
            "\"chunks_total\"",
            "\"cache_hit_rate\"",
            "\"read_latency_p99_ms\"",
            "\"read_ahead_hits\"",
            "\"chunks_present\"",
            "\"rate_bytes_per_s\"",
            "\"elapsed_s\"",
            "\"eta_s\"",
            "\"guest_writes\"",
            "\"type_id\"",
            "\"reason\"",
            "\"extents\"")) {
      assertTrue(json.contains(name), name + " in " + json);
    }
    assertFalse(json.contains("\"error\""), "an absent error is left out");
    assertTrue(json.endsWith("}\n"));
    assertEquals(s, ServeStatus.parse(s.toJson()));
    assertTrue(json.contains("\"connections_total\"") && json.contains("\"bytes_written\""), json);
    ServeStatus none = new ServeStatus("x", null, null, s.cache(), s.pipeline(), List.of());
    String noneJson = new String(none.toJson(), StandardCharsets.UTF_8);
    assertFalse(noneJson.contains("snapshot") || noneJson.contains("server"), noneJson);
    assertNull(ServeStatus.parse(none.toJson()).snapshot());
  }
}
