package dev.thaw.testing;

import dev.thaw.backup.Backup;
import dev.thaw.crypto.CryptConfig;
import dev.thaw.store.SnapshotPath;
import dev.thaw.store.WritableStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

/** Test images and snapshots. */
public final class Fixtures {
  public static final int MIB = 1024 * 1024;

  private Fixtures() {}

  /**
   * An image of {@code chunks} 4 MiB chunks plus {@code tail} bytes: random, text and zero chunks
   * in turn (chunk i % 3 == 2 is zero), deterministic per seed.
   */
  public static byte[] image(int chunks, int tail, long seed) {
    byte[] img = new byte[chunks * 4 * MIB + tail];
    Random r = new Random(seed);
    for (int c = 0; c <= chunks; c++) {
      int start = c * 4 * MIB;
      int end = Math.min(img.length, start + 4 * MIB);
      if (start >= end) {
        break;
      }
      switch (c % 3) {
        case 0 -> {
          byte[] b = new byte[end - start];
          r.nextBytes(b);
          System.arraycopy(b, 0, img, start, b.length);
        }
        case 1 -> {
          for (int i = start; i < end; i++) {
            img[i] = (byte) ('a' + (i * 7 + c) % 26);
          }
        }
        default -> {
          // zeros
        }
      }
    }
    return img;
  }

  /** Writes {@code image} to a file and backs it up as {@code a.img}; returns the snapshot. */
  public static SnapshotPath backup(WritableStore store, Path dir, byte[] image, CryptConfig key)
      throws IOException, InterruptedException {
    Path f = dir.resolve("source-" + System.nanoTime() + ".img");
    Files.write(f, image);
    try {
      return new Backup(store, "vm", "100", Backup.Options.of(key), 2)
          .run(List.of(new Backup.Source("a.img", f)))
          .snapshot();
    } finally {
      Files.delete(f);
    }
  }

  /** {@code len} bytes of an image at {@code off} through a reader handle (fewer at the end). */
  public static byte[] read(dev.thaw.image.ImageReader.Handle h, long off, int len)
      throws IOException {
    byte[] b = new byte[len];
    int n = h.read(off, b, 0, len);
    return java.util.Arrays.copyOf(b, n);
  }
}
