package dev.thaw.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.format.Digest;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.WritableStore;
import dev.thaw.testing.TestStores;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FirstChunkLogTest {
  @TempDir Path dir;

  @Test
  void launcherStartIsReadInMicroseconds() {
    assertEquals(1_764_480_000_123_456L, FirstChunkLog.startMicros("1764480000.123456"));
    assertEquals(1_764_480_000_000_000L, FirstChunkLog.startMicros("1764480000"));
    // a start the launcher did not give (or gave in a locale with a decimal comma): the process's
    long processStart = FirstChunkLog.startMicros("1764480000,123456");
    long now = System.currentTimeMillis() * 1000;
    assertTrue(
        processStart <= now && processStart > now - 3_600_000_000L,
        "process start " + processStart);
  }

  @Test
  void withoutThawDebugTheStoreIsUntouched() throws Exception {
    try (WritableStore store = TestStores.openWritable(dir.toString())) {
      assertSame(store, FirstChunkLog.wrap(store, Map.of()));
    }
  }

  @Test
  void saysOnceHowLongTheFirstChunkRequestTook() throws Exception {
    byte[] blob = {1, 2, 3}; // stores hand back what they hold; the pipeline verifies
    Digest d = Digest.of(new byte[Digest.LENGTH]);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (WritableStore store = TestStores.openWritable(dir.toString())) {
      store.writeChunk(d, blob);
      long start = FirstChunkLog.startMicros("1764480000.5");
      try (ChunkStore logged =
          new FirstChunkLog(store, start, new PrintStream(out, true, StandardCharsets.UTF_8))) {
        logged.listSnapshots(); // not a chunk
        assertEquals("", out.toString(StandardCharsets.UTF_8));
        logged.readChunk(d, 1 << 20);
        logged.readChunk(d, 1 << 20);
      }
    }
    String said = out.toString(StandardCharsets.UTF_8);
    assertTrue(
        said.matches(
            "thaw: debug: first chunk requested [0-9]+\\.[0-9]{3} s after the command started \\(JVM CPU so far -?[0-9]+\\.[0-9]{2} s\\)\\R"),
        said);
  }
}
