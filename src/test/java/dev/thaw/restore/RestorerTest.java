package dev.thaw.restore;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.crypto.CryptConfig;
import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.RetryPolicy;
import dev.thaw.format.Digest;
import dev.thaw.image.Image;
import dev.thaw.image.KeyPolicy;
import dev.thaw.image.Snapshot;
import dev.thaw.store.SnapshotPath;
import dev.thaw.store.StoreException;
import dev.thaw.testing.Fixtures;
import dev.thaw.testing.MemoryStore;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(120)
class RestorerTest {
  private static final int MIB = Fixtures.MIB;
  @TempDir Path dir;

  private final MemoryStore store = new MemoryStore();

  private FetchPipeline pipeline() {
    return new FetchPipeline(
        store, 4, 2, new RetryPolicy(2, Duration.ofMillis(1), Duration.ofMillis(2)));
  }

  private Restorer.Result restore(
      SnapshotPath snap, CryptConfig key, Path target, boolean resume, boolean targetIsZero)
      throws Exception {
    try (FetchPipeline p = pipeline()) {
      Image img = Snapshot.open(store, snap, KeyPolicy.strict(key)).openImage("a.img", p);
      return new Restorer(img, target, new Restorer.Options(resume, targetIsZero, 6, 0, null))
          .run();
    }
  }

  @Test
  void aTargetAnotherProcessIsRestoringIsRefusedWithItsPidAndLeftAlone() throws Exception {
    byte[] image = Fixtures.image(3, 0, 4);
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    Path target = dir.resolve("busy.img");
    byte[] before = "another restore's data".getBytes(StandardCharsets.UTF_8);
    Files.write(target, before);
    // an fcntl lock held by another process, as a running restore or live restore holds it
    Process other =
        new ProcessBuilder(
                "python3",
                "-c",
                """
        import fcntl, sys, time
        f = open(sys.argv[1], 'r+'); fcntl.lockf(f, fcntl.LOCK_EX)
        print('locked', flush=True); time.sleep(60)
        """,
                target.toString())
            .start();
    try {
      assertEquals(
          "locked",
          new java.io.BufferedReader(
                  new java.io.InputStreamReader(other.getInputStream(), StandardCharsets.UTF_8))
              .readLine());
      IOException e =
          assertThrows(IOException.class, () -> restore(snap, null, target, false, false));
      assertTrue(e.getMessage().contains("in use by pid " + other.pid()), e.getMessage());
      assertArrayEquals(before, Files.readAllBytes(target), "the refused restore wrote nothing");
      assertFalse(Files.exists(Restorer.defaultStateFile(target)), "and left no state file");
    } finally {
      other.destroyForcibly().waitFor();
    }
    restore(snap, null, target, false, false); // the lock died with its process
    assertArrayEquals(image, Files.readAllBytes(target));
  }

  @Test
  void twoRestoresOfOneTargetOrOneStateFileDoNotRunTogether() throws Exception {
    byte[] image = Fixtures.image(6, 0, 5);
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    Path target = dir.resolve("one.img");
    java.util.concurrent.CountDownLatch entered = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
    store.fault =
        (d, a) -> {
          entered.countDown();
          try {
            release.await();
          } catch (InterruptedException e) {
            throw new java.io.InterruptedIOException();
          }
        };
    Thread first =
        new Thread(
            () -> {
              try {
                restore(snap, null, target, false, false);
              } catch (Exception e) {
                throw new RuntimeException(e);
              }
            });
    first.start();
    try {
      assertTrue(entered.await(30, java.util.concurrent.TimeUnit.SECONDS));
      IOException same =
          assertThrows(IOException.class, () -> restore(snap, null, target, false, false));
      assertTrue(
          same.getMessage().contains("target " + target + " is in use by"), same.getMessage());
      // another target with the first one's state file
      try (FetchPipeline p = pipeline()) {
        Image img = Snapshot.open(store, snap, KeyPolicy.strict(null)).openImage("a.img", p);
        IOException state =
            assertThrows(
                IOException.class,
                () ->
                    new Restorer(
                            img,
                            dir.resolve("two.img"),
                            new Restorer.Options(
                                false, false, 6, 0, Restorer.defaultStateFile(target)))
                        .run());
        assertTrue(
            state.getMessage().contains("restore state")
                && state.getMessage().contains("in use by"),
            state.getMessage());
      }
      assertFalse(
          Files.exists(dir.resolve("two.img")), "a refused restore leaves no target behind");
    } finally {
      release.countDown();
      store.fault = (d, a) -> {};
      first.join();
    }
    assertArrayEquals(image, Files.readAllBytes(target));
  }

  @Test
  void restoresToANewSparseFile() throws Exception {
    byte[] image = Fixtures.image(7, 12345, 1);
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    Path target = dir.resolve("out.img");
    Restorer.Result r = restore(snap, null, target, false, false);
    assertArrayEquals(image, Files.readAllBytes(target));
    // chunks 2 and 5 are zero, and so is... none of the tail (chunk 7 is random)
    assertEquals(2, r.zero());
    assertEquals(6, r.fetched());
    assertFalse(Files.exists(Restorer.defaultStateFile(target)), "state file removed on success");
  }

  @Test
  void writesZerosIntoAnExistingTargetUnlessToldItIsZero() throws Exception {
    byte[] image = Fixtures.image(3, 0, 2);
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    Path target = dir.resolve("existing.img");
    byte[] garbage = new byte[image.length + 999];
    Arrays.fill(garbage, (byte) 0x55);
    Files.write(target, garbage);
    restore(snap, null, target, false, false);
    assertArrayEquals(image, Files.readAllBytes(target)); // zeros written, and trimmed to size

    Files.write(target, garbage);
    restore(snap, null, target, false, true);
    byte[] out = Files.readAllBytes(target);
    assertEquals(0x55, out[2 * 4 * MIB + 10]); // promised zero: zero chunk not written
    assertArrayEquals(Arrays.copyOf(image, 2 * 4 * MIB), Arrays.copyOf(out, 2 * 4 * MIB));
  }

  @Test
  void encryptedRoundTripAndKeyErrors() throws Exception {
    CryptConfig key = new CryptConfig(new byte[32]);
    byte[] image = Fixtures.image(3, 100, 3);
    SnapshotPath snap = Fixtures.backup(store, dir, image, key);
    Path target = dir.resolve("enc.img");
    restore(snap, key, target, false, false);
    assertArrayEquals(image, Files.readAllBytes(target));

    Path t2 = dir.resolve("nokey.img");
    IOException noKey =
        assertThrows(IOException.class, () -> restore(snap, null, t2, false, false));
    assertTrue(
        noKey.getMessage().contains("--keyfile")
            && noKey.getMessage().contains(key.shortFingerprint()),
        noKey.getMessage());
    byte[] other = new byte[32];
    other[1] = 1;
    IOException wrong =
        assertThrows(
            IOException.class, () -> restore(snap, new CryptConfig(other), t2, false, false));
    assertTrue(wrong.getMessage().contains("wrong key"), wrong.getMessage());
    assertFalse(Files.exists(t2), "nothing written without the right key");
  }

  @Test
  void corruptChunkStopsTheRestoreAndNoWrongByteIsWritten() throws Exception {
    byte[] image = Fixtures.image(4, 0, 4);
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    Digest d3 =
        Digest.of(
            java.security.MessageDigest.getInstance("SHA-256")
                .digest(Arrays.copyOfRange(image, 3 * 4 * MIB, 4 * 4 * MIB)));
    byte[] bad = store.raw(d3).clone();
    bad[bad.length - 10] ^= 1;
    store.putRaw(d3, bad);
    Path target = dir.resolve("corrupt.img");
    IOException e =
        assertThrows(IOException.class, () -> restore(snap, null, target, false, false));
    assertTrue(
        e.getMessage().contains(d3.hex()) && e.getMessage().contains("--resume"), e.getMessage());
    byte[] out = Files.readAllBytes(target);
    assertArrayEquals(
        new byte[4 * MIB],
        Arrays.copyOfRange(out, 3 * 4 * MIB, 4 * 4 * MIB),
        "the corrupt chunk's range holds no data");
    assertTrue(Files.exists(Restorer.defaultStateFile(target)));
  }

  @Test
  void resumeFetchesOnlyWhatIsMissing() throws Exception {
    byte[] image = Fixtures.image(12, 777, 5);
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    Path target = dir.resolve("resume.img");
    AtomicInteger served = new AtomicInteger();
    store.fault =
        (d, attempt) -> {
          if (served.incrementAndGet() > 4) {
            throw new StoreException("store went away", false);
          }
        };
    assertThrows(IOException.class, () -> restore(snap, null, target, false, false));
    IOException refuse =
        assertThrows(IOException.class, () -> restore(snap, null, target, false, false));
    assertTrue(refuse.getMessage().contains("--resume"), refuse.getMessage());

    store.fault = (d, attempt) -> {};
    int before = store.totalReads();
    Restorer.Result r = restore(snap, null, target, true, false);
    assertArrayEquals(image, Files.readAllBytes(target));
    Process stat = new ProcessBuilder("stat", "-c", "%b", target.toString()).start();
    long allocated =
        Long.parseLong(
                new String(stat.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim())
            * 512;
    assertTrue(
        allocated <= image.length - 4L * 4 * MIB + MIB,
        "zero chunks of a resumed restore into a file it created stay holes ("
            + allocated
            + " bytes allocated)");
    // 13 chunks, of which 2, 5, 8, 11 are zero; the 4 chunks served before the fault are kept
    assertEquals(13, r.fetched() + r.zero() + r.alreadyDone());
    assertEquals(9 - 4, r.fetched(), "already done " + r.alreadyDone());
    assertEquals(r.fetched(), store.totalReads() - before, "nothing finished was fetched again");
    assertFalse(Files.exists(Restorer.defaultStateFile(target)));
  }

  @Test
  void refusesAStateFileOfAnotherImage() throws Exception {
    SnapshotPath a = Fixtures.backup(store, dir, Fixtures.image(2, 0, 6), null);
    Thread.sleep(1100);
    SnapshotPath b = Fixtures.backup(store, dir, Fixtures.image(2, 0, 7), null);
    Path target = dir.resolve("x.img");
    store.fault =
        (d, attempt) -> {
          throw new StoreException("down", false);
        };
    assertThrows(IOException.class, () -> restore(a, null, target, false, false));
    store.fault = (d, attempt) -> {};
    IOException e = assertThrows(IOException.class, () -> restore(b, null, target, true, false));
    assertTrue(e.getMessage().contains("different image"), e.getMessage());
  }

  @Test
  void refusesATargetInAMissingDirectory() throws Exception {
    SnapshotPath snap = Fixtures.backup(store, dir, Fixtures.image(1, 0, 8), null);
    IOException e =
        assertThrows(
            IOException.class,
            () -> restore(snap, null, dir.resolve("no/such/dir/x.img"), false, false));
    assertTrue(e.getMessage().contains("no/such/dir"), e.getMessage());
  }

  @Test
  void writesGoOnWhileACheckpointSyncsAndEachRecordCoversOnlySyncedChunks() throws Exception {
    byte[] image = Fixtures.image(16, 0, 23);
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    Path target = dir.resolve("slow-disk.img");
    RecordingChannels io = new RecordingChannels(target);
    io.slowSyncs(150);
    Restorer.Result r;
    try (FetchPipeline p = pipeline()) {
      Image img = Snapshot.open(store, snap, KeyPolicy.strict(null)).openImage("a.img", p);
      // a checkpoint whenever none runs: every write lands beside a sync
      r = new Restorer(img, target, new Restorer.Options(false, false, 2, 0, null), io, 0).run();
    }
    assertArrayEquals(image, Files.readAllBytes(target));
    assertEquals(16, r.fetched() + r.zero());
    io.assertSyncedBeforeEachRecord();
    // a target write logged after a sync began and before the record that sync allows: the
    // restore did not stop writing for the sync
    List<RecordingChannels.Event> ev = io.events();
    boolean wroteDuringASync = false;
    boolean syncing = false;
    for (RecordingChannels.Event e : ev) {
      if (e.is(true, RecordingChannels.Kind.SYNC)) {
        syncing = true;
      } else if (!e.target() && e.claims()) {
        syncing = false;
      } else if (syncing && e.is(true, RecordingChannels.Kind.WRITE)) {
        wroteDuringASync = true;
      }
    }
    assertTrue(wroteDuringASync, "the restore waited for each of its syncs");
    assertFalse(Files.exists(Restorer.defaultStateFile(target)));
  }

  @Test
  void aCheckpointFollowsEvery64MiBWrittenNotOnlyTheClock() throws Exception {
    byte[] image = Fixtures.image(40, 0, 24); // 160 MiB
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    Path target = dir.resolve("big.img");
    RecordingChannels io = new RecordingChannels(target);
    try (FetchPipeline p = pipeline()) {
      Image img = Snapshot.open(store, snap, KeyPolicy.strict(null)).openImage("a.img", p);
      // the clock alone would checkpoint once an hour
      new Restorer(
              img, target, new Restorer.Options(false, false, 4, 0, null), io, 3_600_000_000_000L)
          .run();
    }
    assertArrayEquals(image, Files.readAllBytes(target));
    io.assertSyncedBeforeEachRecord();
    long records = io.events().stream().filter(RecordingChannels.Event::claims).count();
    assertTrue(records >= 1, "no checkpoint before the end: the whole image was synced at once");
  }

  @Test
  void aRestoreIntoACharacterDeviceKeepsNoProgressAndNeedsNoResume() throws Exception {
    byte[] image = Fixtures.image(6, 0, 25);
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    Path devNull = Path.of("/dev/null");
    Path states = dev.thaw.io.UserDirs.state();
    java.util.function.Supplier<List<Path>> scratch =
        () -> {
          try (var files = Files.list(states)) {
            return files.filter(f -> f.getFileName().toString().startsWith("restore-")).toList();
          } catch (IOException e) {
            return List.of(); // no state directory: no scratch file either
          }
        };
    List<Path> before = scratch.get();
    store.fault =
        (d, attempt) -> {
          throw new StoreException("store went away", false);
        };
    Restorer.Options fresh = new Restorer.Options(false, false, 2, 0, null);
    IOException e =
        assertThrows(IOException.class, () -> restore(snap, devNull, fresh, Channels.PLAIN));
    assertTrue(
        e.getMessage().contains("keeps no progress") && !e.getMessage().contains("--resume"),
        e.getMessage());
    assertEquals(before, scratch.get(), "a scratch state file was left behind");
    assertFalse(Files.exists(Restorer.defaultStateFile(devNull)));

    store.fault = (d, attempt) -> {};
    Restorer.Result r = restore(snap, devNull, fresh, Channels.PLAIN);
    assertEquals(6, r.fetched() + r.zero(), "the next restore starts afresh, without --resume");
    assertEquals(before, scratch.get());
    IOException resume =
        assertThrows(
            IOException.class,
            () ->
                restore(
                    snap, devNull, new Restorer.Options(true, false, 2, 0, null), Channels.PLAIN));
    assertTrue(resume.getMessage().contains("no progress to resume"), resume.getMessage());
  }

  private Restorer.Result restore(
      SnapshotPath snap, Path target, Restorer.Options options, Channels io) throws Exception {
    try (FetchPipeline p = pipeline()) {
      Image img = Snapshot.open(store, snap, KeyPolicy.strict(null)).openImage("a.img", p);
      return new Restorer(img, target, options, io).run();
    }
  }

  /**
   * Whether the state file of an interrupted restore records chunk {@code chunk} (read from a
   * copy).
   */
  private boolean recorded(SnapshotPath snap, Path stateFile, int chunk) throws Exception {
    Path copy = dir.resolve("state-copy");
    Files.copy(stateFile, copy, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    try (FetchPipeline p = pipeline()) {
      Image img = Snapshot.open(store, snap, KeyPolicy.strict(null)).openImage("a.img", p);
      try (RestoreState st =
          RestoreState.open(copy, img.index().checksum(), img.size(), img.chunkCount())) {
        return st.isPresent(chunk);
      }
    }
  }

  @Test
  void aRestoreGivesEachChunksArrayBackForTheNextAndReportsItsProgress() throws Exception {
    byte[] image = Fixtures.image(6, 0, 23); // chunks 2 and 5 are zero
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    Path target = dir.resolve("pooled.img");
    try (FetchPipeline p = pipeline()) {
      Image img = Snapshot.open(store, snap, KeyPolicy.strict(null)).openImage("a.img", p);
      Restorer r = new Restorer(img, target, new Restorer.Options(false, false, 1, 0, null));
      r.run();
      assertTrue(p.pool().reused() >= 2, "arrays reused " + p.pool().reused() + " times");
      Restorer.Progress pr = r.progress();
      assertEquals(image.length, pr.totalBytes());
      assertEquals(image.length, pr.doneBytes());
      assertEquals(8L * MIB, pr.zeroBytes());
      assertTrue(
          pr.elapsedNanos() > 0 && pr.elapsedNanos() < 60_000_000_000L,
          "elapsed " + pr.elapsedNanos());
    }
    assertArrayEquals(image, Files.readAllBytes(target));
  }

  @Test
  void aResumeIntoATargetThatHeldOtherDataStillWritesItsZeroChunks() throws Exception {
    byte[] image = Fixtures.image(6, 0, 21); // chunks 2 and 5 are zero
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    Path target = dir.resolve("dirty.img");
    byte[] dirt = new byte[image.length];
    Arrays.fill(dirt, (byte) 0xee);
    Files.write(target, dirt);
    store.fault =
        (d, attempt) -> {
          throw new StoreException("store went away", false);
        };
    // a window of one chunk: the first fails before the restore reaches a zero chunk
    Restorer.Options first = new Restorer.Options(false, false, 1, 0, null);
    assertThrows(IOException.class, () -> restore(snap, target, first, Channels.PLAIN));
    store.fault = (d, attempt) -> {};
    Restorer.Result r =
        restore(snap, target, new Restorer.Options(true, false, 4, 0, null), Channels.PLAIN);
    assertEquals(2, r.zero());
    assertArrayEquals(
        image, Files.readAllBytes(target), "the old bytes of the zero chunks are gone");
  }

  @Test
  void aFullDiskStopsTheRestoreNamingTheChunkKeepsOnlySyncedChunksAndAResumeCompletesIt()
      throws Exception {
    byte[] image = Fixtures.image(6, 0, 22); // chunks 2 and 5 are zero
    SnapshotPath snap = Fixtures.backup(store, dir, image, null);
    for (boolean existing : new boolean[] {false, true}) {
      // a new file fills up at a data chunk (3); an existing one, whose zero chunks are
      // written, at the first zero chunk (2)
      int full = existing ? 2 : 3;
      Path target = dir.resolve("full-" + existing + ".img");
      if (existing) {
        Files.write(target, new byte[image.length + 5]);
      }
      RecordingChannels io = new RecordingChannels(target);
      io.fault(e -> e.target() && e.position() >= full * 4L * MIB && e.length() > 1 ? 1000 : -1);
      IOException e =
          assertThrows(
              IOException.class,
              () -> restore(snap, target, new Restorer.Options(false, false, 2, 0, null), io));
      Path stateFile = Restorer.defaultStateFile(target);
      // two chunks in flight are written in the order they arrive: the first write that fails
      // is chunk `full` or the one after it, and the message names that one and its offset
      Matcher m =
          Pattern.compile(
                  "cannot write chunk (\\d+) to "
                      + Pattern.quote(target.toString())
                      + " at offset (\\d+)")
              .matcher(e.getMessage());
      assertTrue(m.find(), e.getMessage());
      int failed = Integer.parseInt(m.group(1));
      assertTrue(failed == full || failed == full + 1, e.getMessage());
      assertEquals(failed * 4L * MIB, Long.parseLong(m.group(2)), e.getMessage());
      assertTrue(
          e.getMessage().contains("no space left on the device")
              && e.getMessage().contains("--resume")
              && e.getMessage().contains(stateFile.toString()),
          e.getMessage());
      io.assertSyncedBeforeEachRecord();
      assertTrue(Files.exists(stateFile), "progress kept");
      if (!existing) {
        assertTrue(
            recorded(snap, stateFile, 2),
            "the zero chunk before the full one needed no write and is done");
      }

      RecordingChannels resume = new RecordingChannels(target);
      Restorer.Result r =
          restore(snap, target, new Restorer.Options(true, false, 2, 0, null), resume);
      assertArrayEquals(image, Files.readAllBytes(target), "existing " + existing);
      assertTrue(
          r.alreadyDone() > 0 && r.alreadyDone() <= full, "already done: " + r.alreadyDone());
      resume.assertSyncedBeforeEachRecord(); // also before the state is deleted at the end
      long saves = resume.events().stream().filter(RecordingChannels.Event::claims).count();
      assertTrue(
          saves <= 2 + r.elapsedNanos() / RestoreState.CHECKPOINT_NANOS,
          saves + " saves: at checkpoints, not per chunk");
      assertEquals(
          RecordingChannels.Kind.DELETE,
          resume.events().stream()
              .filter(ev -> !ev.target())
              .reduce((a, b) -> b)
              .orElseThrow()
              .kind());
      assertFalse(Files.exists(Restorer.defaultStateFile(target)));
    }
  }
}
