package dev.thaw.fetch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.thaw.format.Digest;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.NotFoundException;
import dev.thaw.store.SnapshotPath;
import dev.thaw.store.StoreException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class RetryingFilesTest {
  private static final int MAX = 1 << 20;
  private final SnapshotPath snap = SnapshotPath.parse("vm/1/2025-01-01T00:00:00Z");

  /** A store that is down for its first {@code downFor} calls of each kind. */
  private static ChunkStore flaky(int downFor, AtomicInteger calls) {
    return new ChunkStore() {
      private void maybeDown() throws StoreException {
        if (calls.incrementAndGet() <= downFor) {
          throw new StoreException("cannot connect to backup.example:443", true);
        }
      }

      @Override
      public byte[] readChunk(Digest digest, int maxBytes) throws StoreException {
        maybeDown();
        return new byte[] {1};
      }

      @Override
      public byte[] readFile(SnapshotPath snapshot, String file) throws java.io.IOException {
        maybeDown();
        if (file.equals("missing")) {
          throw new NotFoundException("missing not found");
        }
        return new byte[] {2};
      }

      @Override
      public List<SnapshotPath> listSnapshots() throws StoreException {
        maybeDown();
        return List.of(SnapshotPath.parse("vm/1/2025-01-01T00:00:00Z"));
      }

      @Override
      public String location(Digest digest) {
        return "here";
      }

      @Override
      public String location(SnapshotPath snapshot, String file) {
        return "here";
      }

      @Override
      public String describe() {
        return "flaky";
      }

      @Override
      public void close() {}
    };
  }

  private final RetryPolicy fast =
      new RetryPolicy(10, Duration.ofMillis(1), Duration.ofMillis(2), Duration.ofSeconds(5));

  @Test
  void snapshotFilesAndListingsAreRetriedLikeChunks() throws Exception {
    AtomicInteger calls = new AtomicInteger();
    ChunkStore s = fast.retryingFileReads(flaky(3, calls));
    assertArrayEquals(new byte[] {2}, s.readFile(snap, "index.json.blob"));
    assertEquals(4, calls.get());
    calls.set(0);
    assertEquals(1, s.listSnapshots().size());
    assertEquals(4, calls.get());
  }

  @Test
  void chunkReadsAreLeftToThePipelineAndNotFoundIsNotRetried() throws Exception {
    AtomicInteger calls = new AtomicInteger();
    ChunkStore s = fast.retryingFileReads(flaky(1, calls));
    assertThrows(StoreException.class, () -> s.readChunk(Digest.parse("00".repeat(32)), MAX));
    assertEquals(1, calls.get(), "one attempt: the pipeline owns chunk retries");
    calls.set(0);
    assertThrows(NotFoundException.class, () -> s.readFile(snap, "missing"));
    assertEquals(2, calls.get(), "the outage is retried, the 404 that follows is not");
  }
}
