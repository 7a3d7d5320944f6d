package dev.thaw.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

class SnapshotPathTest {
  @Test
  void parsesAndPrints() {
    SnapshotPath p = SnapshotPath.parse("vm/100/2026-11-22T03:04:05Z");
    assertEquals("vm", p.type());
    assertEquals("100", p.id());
    assertEquals("vm/100/2026-11-22T03:04:05Z", p.toString());
    SnapshotPath ns = SnapshotPath.parse("ns/prod/ns/db/ct/web-1/2025-07-14T14:20:02Z");
    assertEquals(List.of("prod", "db"), ns.namespace());
    assertEquals("ns/prod/ns/db/ct/web-1/2025-07-14T14:20:02Z", ns.toString());
  }

  @Test
  void refusesNamesThatLeaveTheRoot() {
    for (String bad :
        List.of(
            "../../etc",
            "/etc/x/2026-11-22T03:04:05Z",
            "vm/../2026-11-22T03:04:05Z",
            "vm/100/..",
            "vm//2026-11-22T03:04:05Z",
            "vm/100/2026-11-22T03:04:05Z/..",
            "vm/1\\00/2026-11-22T03:04:05Z",
            "xx/100/2026-11-22T03:04:05Z",
            "vm/100/yesterday",
            "vm/.hidden/2026-11-22T03:04:05Z",
            "ns/../vm/100/2026-11-22T03:04:05Z",
            "vm/100/2026-13-40T03:04:05Z",
            "vm/100")) {
      assertThrows(IllegalArgumentException.class, () -> SnapshotPath.parse(bad), bad);
    }
  }
}
