package dev.thaw.testing;

import com.github.luben.zstd.Zstd;
import dev.thaw.format.Digest;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.zip.GZIPOutputStream;
import org.tukaani.xz.LZMA2Options;
import org.tukaani.xz.XZOutputStream;

/**
 * casync images for tests, made the way casync makes them: variable-size chunks within [min, max],
 * runs of zeros cut into chunks of the maximum size, chunk files compressed, ids the SHA-512/256
 * (or SHA-256) of the plain data, and a {@code .caibx} index in casync's layout.
 */
public final class CasyncFixtures {
  public static final long TYPE_INDEX = 0x96824d9c7b129ff9L;
  public static final long TYPE_TABLE = 0xe75b9e112f17417dL;
  public static final long TABLE_MARKER = 0x4b4f050e5549ecd1L;
  public static final long FLAG_SHA512_256 = 0x2000000000000000L;

  /** How chunk files are compressed. */
  public enum Compression {
    ZSTD,
    XZ,
    GZIP,
    NONE
  }

  /** An index's chunks: end offsets and ids. */
  public record Chunks(long[] ends, Digest[] ids) {}

  private CasyncFixtures() {}

  /** Ids are SHA-512/256 when {@code sha512}, else SHA-256. */
  public static Digest id(byte[] data, int off, int len, boolean sha512) {
    try {
      MessageDigest md = MessageDigest.getInstance(sha512 ? "SHA-512/256" : "SHA-256");
      md.update(data, off, len);
      return Digest.of(md.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }

  /**
   * Cuts {@code image} into chunks (sizes pseudo-random in [min, max], a run of zeros of at least
   * {@code max} bytes cut into max-size chunks), writes each distinct chunk to {@code store}
   * compressed as asked, and returns the chunk table.
   */
  public static Chunks chunk(
      byte[] image, int min, int max, boolean sha512, Compression c, MemoryStore store, long seed) {
    Random r = new Random(seed);
    List<Long> ends = new ArrayList<>();
    List<Digest> ids = new ArrayList<>();
    int at = 0;
    while (at < image.length) {
      int len = allZero(image, at, max) ? max : min + r.nextInt(max - min + 1);
      len = Math.min(len, image.length - at);
      Digest d = id(image, at, len, sha512);
      if (!store.hasChunk(d)) {
        store.writeChunk(d, compress(image, at, len, c));
      }
      ends.add((long) at + len);
      ids.add(d);
      at += len;
    }
    return new Chunks(
        ends.stream().mapToLong(Long::longValue).toArray(), ids.toArray(new Digest[0]));
  }

  private static boolean allZero(byte[] b, int off, int len) {
    if (b.length - off < len) {
      return false;
    }
    for (int i = off; i < off + len; i++) {
      if (b[i] != 0) {
        return false;
      }
    }
    return true;
  }

  /** A chunk file's bytes. */
  public static byte[] compress(byte[] data, int off, int len, Compression c) {
    byte[] plain = java.util.Arrays.copyOfRange(data, off, off + len);
    try {
      return switch (c) {
        case ZSTD -> Zstd.compress(plain, 3);
        case XZ -> {
          ByteArrayOutputStream out = new ByteArrayOutputStream();
          try (XZOutputStream xz = new XZOutputStream(out, new LZMA2Options(1))) {
            xz.write(plain);
          }
          yield out.toByteArray();
        }
        case GZIP -> {
          ByteArrayOutputStream out = new ByteArrayOutputStream();
          try (GZIPOutputStream gz = new GZIPOutputStream(out)) {
            gz.write(plain);
          }
          yield out.toByteArray();
        }
        default -> plain;
      };
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The {@code .caibx} bytes of a chunk table, as casync writes them. */
  public static byte[] index(Chunks chunks, int min, int avg, int max, boolean sha512) {
    int n = chunks.ends().length;
    ByteBuffer b = ByteBuffer.allocate(48 + 16 + 40 * n + 40).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(48)
        .putLong(TYPE_INDEX)
        .putLong(sha512 ? FLAG_SHA512_256 | 0x9000000000000000L : 0x9000000000000000L)
        .putLong(min)
        .putLong(avg)
        .putLong(max);
    b.putLong(-1L).putLong(TYPE_TABLE);
    for (int i = 0; i < n; i++) {
      b.putLong(chunks.ends()[i]).put(chunks.ids()[i].toBytes());
    }
    b.putLong(0).putLong(0).putLong(48).putLong(16 + 40L * n + 40).putLong(TABLE_MARKER);
    return b.array();
  }

  /**
   * A test image: {@code size} bytes of random and text stretches with runs of zeros (several times
   * {@code max} long) between them, deterministic per seed.
   */
  public static byte[] image(int size, int max, long seed) {
    byte[] img = new byte[size];
    Random r = new Random(seed);
    int at = 0;
    int kind = 0;
    while (at < size) {
      int len = Math.min(size - at, max * (1 + r.nextInt(6)) + r.nextInt(max));
      switch (kind++ % 3) {
        case 0 -> {
          byte[] b = new byte[len];
          r.nextBytes(b);
          System.arraycopy(b, 0, img, at, len);
        }
        case 1 -> {
          for (int i = at; i < at + len; i++) {
            img[i] = (byte) ('a' + (i * 7 + kind) % 26);
          }
        }
        default -> {
          // zeros
        }
      }
      at += len;
    }
    return img;
  }
}
