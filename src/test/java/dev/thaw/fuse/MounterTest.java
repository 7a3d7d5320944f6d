package dev.thaw.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.RetryPolicy;
import dev.thaw.image.ImageReader;
import dev.thaw.image.KeyPolicy;
import dev.thaw.store.SnapshotPath;
import dev.thaw.testing.Fixtures;
import dev.thaw.testing.MemoryStore;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MounterTest {
  @TempDir Path dir;

  @Test
  void aRehearsalReadsTheStartOfEachImageThroughTheCallbacksAndMountsNothing() throws Exception {
    MemoryStore store = new MemoryStore();
    byte[] image = Fixtures.image(2, 100, 5); // 8 MiB + 100 B
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    Mounter.Options o =
        new Mounter.Options(
            64L << 20, new ImageReader.Settings(0, 0, Duration.ofSeconds(10)), false, null, false);
    try (FetchPipeline p =
        new FetchPipeline(
            store, 4, 2, new RetryPolicy(1, Duration.ofMillis(1), Duration.ofMillis(1)))) {
      long read =
          Mounter.rehearse(Mounter.bind(), store, p, KeyPolicy.strict(null), snap, o, 1 << 20);
      // the first MiB of the image, and the status document (a few hundred bytes)
      assertTrue(read > (1 << 20) && read < (1 << 20) + 64 * 1024, "read " + read);
      assertEquals(1, p.stats().fetched(), "one chunk fetched for the first MiB");
    }
    assertTrue(!Mounter.isMounted(dir), "nothing mounted");
  }
}
