package dev.thaw.restore;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The durability format of restores: two checksummed slots, the newest intact one wins. */
class RestoreStateTest {
  private static final int CHUNKS = 200; // more than 64: bitmaps span several words and bytes
  private static final byte[] CSUM = new byte[32];
  private static final long SIZE = CHUNKS * 4L * 1024 * 1024;

  /** Where the slots start: magic 8, index checksum 32, size 8, count 4, flags 4. */
  private static final int HEADER = 56;

  private static final int SLOT = 12 + (CHUNKS + 7) / 8;

  @TempDir Path dir;

  static {
    Arrays.fill(CSUM, (byte) 7);
  }

  private RestoreState open(Path f) throws IOException {
    return RestoreState.open(f, CSUM, SIZE, CHUNKS);
  }

  /** Saves {@code present} as the state after the previous saves. */
  private static void save(RestoreState st, int... present) throws IOException {
    for (int i : present) {
      st.markPresent(i);
    }
    st.save();
  }

  @Test
  void aFreshFileResumesWithWhatWasSavedAndTheHolesFlag() throws Exception {
    Path f = dir.resolve("s");
    try (RestoreState st = open(f)) {
      assertFalse(st.resumed());
      st.setHolesAreZero(true);
      save(st, 0, 63, 64, 130, 199);
    }
    try (RestoreState st = open(f)) {
      assertTrue(st.resumed());
      assertTrue(st.holesAreZero());
      for (int i = 0; i < CHUNKS; i++) {
        assertEquals(
            i == 0 || i == 63 || i == 64 || i == 130 || i == 199, st.isPresent(i), "chunk " + i);
      }
    }
    try (RestoreState st = open(f)) {
      st.setHolesAreZero(false); // only the first record sets it: a resume keeps what was saved
      save(st, 5);
    }
    try (RestoreState st = open(f)) {
      assertTrue(st.holesAreZero());
      assertTrue(st.isPresent(5) && st.isPresent(199));
    }
  }

  @Test
  void aTornSaveOfEitherSlotLeavesThePreviousStateIntact() throws Exception {
    for (int torn = 0; torn < 2; torn++) {
      Path f = dir.resolve("torn" + torn);
      try (RestoreState st = open(f)) {
        save(st, 1); // sequence 1: slot 1
        save(st, 2); // sequence 2: slot 0
        save(st, 3); // sequence 3: slot 1
        save(st, 4); // sequence 4: slot 0
      }
      // tear the newest save (slot 0, sequence 4) or, in the second round, the one before it
      int slot = torn == 0 ? 0 : 1;
      try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
        raf.seek(HEADER + (long) slot * SLOT + 12 + 1);
        raf.write(0xff); // bitmap bytes no longer match the slot's CRC
      }
      try (RestoreState st = open(f)) {
        if (torn == 0) {
          assertTrue(
              st.isPresent(1) && st.isPresent(2) && st.isPresent(3), "the older slot survives");
          assertFalse(st.isPresent(4), "the torn save is not trusted");
        } else {
          assertTrue(st.isPresent(4), "the newest intact save wins");
        }
      }
    }
  }

  @Test
  void slotsHaveTheirOwnPlaceAndTheFileItsFullSizeAtOnce() throws Exception {
    Path f = dir.resolve("layout");
    try (RestoreState st = open(f)) {
      save(st, 199); // sequence 1 in slot 1
    }
    byte[] b = Files.readAllBytes(f);
    assertEquals(HEADER + 2 * SLOT, b.length, "created at full size: saves need no space");
    // slot 0 keeps sequence 0 with an empty bitmap; slot 1 has sequence 1 with chunk 199
    assertEquals(0, b[HEADER]);
    assertEquals(1, b[HEADER + SLOT]);
    assertEquals((byte) 0x80, b[HEADER + SLOT + 12 + 199 / 8]);
    for (int i = HEADER + 12; i < HEADER + SLOT; i++) {
      assertEquals(0, b[i], "slot 0's bitmap at " + i);
    }
  }

  @Test
  void aStateFileOfAnotherImageOrADamagedOneIsRefused() throws Exception {
    Path f = dir.resolve("other");
    try (RestoreState st = open(f)) {
      save(st, 1);
    }
    byte[] otherCsum = CSUM.clone();
    otherCsum[0] ^= 1;
    IOException other =
        assertThrows(IOException.class, () -> RestoreState.open(f, otherCsum, SIZE, CHUNKS));
    assertTrue(other.getMessage().contains("belongs to a different image"), other.getMessage());
    assertThrows(IOException.class, () -> RestoreState.open(f, CSUM, SIZE + 1, CHUNKS));
    Files.write(f, "not a state file at all".getBytes(StandardCharsets.UTF_8));
    IOException junk = assertThrows(IOException.class, () -> open(f));
    assertTrue(junk.getMessage().contains("damaged or not a thaw state file"), junk.getMessage());
    Path both = dir.resolve("both");
    try (RestoreState st = open(both)) {
      save(st, 1);
    }
    try (RandomAccessFile raf = new RandomAccessFile(both.toFile(), "rw")) {
      raf.seek(HEADER + 8);
      raf.writeInt(0x12345678); // slot 0's CRC
      raf.seek(HEADER + SLOT + 8);
      raf.writeInt(0x12345678); // slot 1's CRC
    }
    IOException none = assertThrows(IOException.class, () -> open(both));
    assertTrue(none.getMessage().contains("no valid record"), none.getMessage());
  }

  @Test
  void anEmptyFileIsNoProgressAndAnAbandonedOneIsRemoved() throws Exception {
    Path f = dir.resolve("empty");
    Files.createFile(f); // a crash right after the creation
    RestoreState st = open(f);
    assertFalse(st.resumed());
    st.abandon();
    assertFalse(Files.exists(f), "a state file this open created and never saved to is removed");
    try (RestoreState saved = open(f)) {
      save(saved, 3);
    }
    RestoreState again = open(f);
    again.abandon();
    assertTrue(Files.exists(f), "a state file with progress is kept");
  }

  @Test
  void aTargetThatHeldOtherDataIsNeverTakenForZerosAfterAResume() throws Exception {
    Path f = dir.resolve("dirty");
    try (RestoreState st = open(f)) {
      st.setHolesAreZero(false); // an existing file or device: unwritten ranges hold anything
      save(st, 3);
    }
    try (RestoreState st = open(f)) {
      assertTrue(st.resumed());
      assertFalse(st.holesAreZero(), "zero chunks must still be written into it");
      assertTrue(st.isPresent(3));
    }
  }

  @Test
  void eachSaveIsSyncedAndOneCutShortByACrashLeavesThePreviousStateInEitherSlot() throws Exception {
    for (int torn = 1; torn <= 4; torn++) { // sequences 1 and 3 go to slot 1, 2 and 4 to slot 0
      Path f = dir.resolve("crash" + torn);
      RecordingChannels io = new RecordingChannels(dir.resolve("no-target"));
      int tornSave = torn;
      try (RestoreState st = RestoreState.open(f, CSUM, SIZE, CHUNKS, io)) {
        for (int seq = 1; seq < torn; seq++) {
          save(st, seq, CHUNKS - seq); // each save changes both halves of the bitmap
          List<RecordingChannels.Event> ev = io.events();
          assertEquals(
              RecordingChannels.Kind.SYNC, ev.get(ev.size() - 1).kind(), "save " + seq + " synced");
          assertEquals(RecordingChannels.Kind.WRITE, ev.get(ev.size() - 2).kind());
        }
        // the save of sequence `torn` gets its sequence number and CRC on disk, not its bitmap
        io.fault(e -> e.position() > 0 ? 12 : -1);
        assertThrows(IOException.class, () -> save(st, tornSave, CHUNKS - tornSave));
      }
      List<RecordingChannels.Event> ev = io.events();
      assertEquals(
          List.of(RecordingChannels.Kind.WRITE, RecordingChannels.Kind.SYNC),
          List.of(ev.get(0).kind(), ev.get(1).kind()),
          "the file's header and first slot are durable before the first save");
      try (RestoreState st = open(f)) {
        for (int i = 0; i < CHUNKS; i++) {
          boolean saved = (i > 0 && i < torn) || (i > CHUNKS - torn && i < CHUNKS);
          assertEquals(saved, st.isPresent(i), "torn save " + torn + ", chunk " + i);
        }
      }
    }
  }

  @Test
  void theFileHasItsFullSizeFromTheFirstSaveOnAndLivesInADirectoryMadeForIt() throws Exception {
    Path f = dir.resolve("state/of/a/device");
    try (RestoreState st = open(f)) {
      save(st, 1);
      assertEquals(
          HEADER + 2L * SLOT, Files.size(f), "both slots are there: a save needs no free space");
      for (int i = 2; i < 40; i++) {
        save(st, i);
      }
      assertEquals(HEADER + 2L * SLOT, Files.size(f));
      assertEquals(f, st.file());
    }
    // trailing bytes of a file system's block are tolerated; more is not a state file
    try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
      raf.setLength(HEADER + 2L * SLOT + 4096);
    }
    try (RestoreState st = open(f)) {
      assertTrue(st.isPresent(39));
    }
  }

  @Test
  void aFileCutShortInItsSecondSlotResumesFromTheFirst() throws Exception {
    Path f = dir.resolve("cut");
    try (RestoreState st = open(f)) {
      save(st, 5); // sequence 1: slot 1
      save(st, 6); // sequence 2: slot 0
    }
    try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
      raf.setLength(HEADER + SLOT + 12 + 3); // slot 1's bitmap cut short
    }
    try (RestoreState st = open(f)) {
      assertTrue(st.isPresent(5) && st.isPresent(6));
    }
  }
}
