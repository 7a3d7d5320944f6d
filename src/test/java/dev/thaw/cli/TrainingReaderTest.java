package dev.thaw.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.store.ChunkLayout;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.Stores;
import dev.thaw.store.TrainingReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The start-up training's reader serves what thaw's commands over the PBS reader protocol need to
 * run to their end: a training that failed early would leave their classes out of the archive
 * without a word.
 */
class TrainingReaderTest {
  @TempDir Path dir;

  @Test
  void lsVerifyRestoreAndARehearsedMountRunThroughIt() throws Exception {
    byte[] image = new byte[12 << 20];
    new Random(7).nextBytes(image);
    Path src = Files.write(dir.resolve("disk.img"), image);
    Path ds = dir.resolve("ds");
    String snapshot = CommandRun.backup(ds, src);

    try (ChunkStore store =
            Stores.access(Stores.Options.defaults(1))
                .open(List.of(ds.toString()), ChunkLayout.DATASTORE);
        TrainingReader reader = new TrainingReader(store)) {
      Map<String, String> env = reader.environment();
      String repo = reader.repository();

      CommandRun ls = CommandRun.of(env, "ls", "--repository", repo);
      assertEquals(0, ls.code(), ls.err());
      assertTrue(ls.out().contains(snapshot), ls.out());

      CommandRun verify = CommandRun.of(env, "verify", "--repository", repo, snapshot);
      assertEquals(0, verify.code(), verify.err());

      Path out = dir.resolve("out.img");
      CommandRun restore =
          CommandRun.of(
              env,
              "restore",
              "--progress",
              "none",
              "--repository",
              repo,
              snapshot,
              "disk.img",
              out.toString());
      assertEquals(0, restore.code(), restore.err());
      assertArrayEquals(image, Files.readAllBytes(out));

      Path mnt = Files.createDirectory(dir.resolve("mnt"));
      CommandRun mount =
          CommandRun.of(env, "mount", "--rehearse", "--repository", repo, snapshot, mnt.toString());
      assertEquals(0, mount.code(), mount.err());

      // the certificate is pinned: another fingerprint is refused
      String fp = env.get("PBS_FINGERPRINT");
      Map<String, String> other = new HashMap<>(env);
      other.put("PBS_FINGERPRINT", (fp.startsWith("00") ? "11" : "00") + fp.substring(2));
      CommandRun refused = CommandRun.of(other, "ls", "--repository", repo);
      assertNotEquals(0, refused.code());
      assertTrue(refused.err().contains("does not match"), refused.err());
    }
  }
}
