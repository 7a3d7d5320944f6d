package dev.thaw.volume;

import java.nio.charset.StandardCharsets;

/**
 * Little-endian field access and checksums shared by the parsers of on-disk structures. Stateless.
 */
public final class Bytes {
  private Bytes() {}

  public static int u8(byte[] b, int at) {
    return b[at] & 0xff;
  }

  public static int u16(byte[] b, int at) {
    return (b[at] & 0xff) | (b[at + 1] & 0xff) << 8;
  }

  /** An unsigned 32-bit field as a long. */
  public static long u32(byte[] b, int at) {
    return (u16(b, at) | (long) u16(b, at + 2) << 16) & 0xffffffffL;
  }

  public static long u64(byte[] b, int at) {
    return u32(b, at) | u32(b, at + 4) << 32;
  }

  static boolean ascii(byte[] b, int at, String s) {
    if (at < 0 || at + s.length() > b.length) {
      return false;
    }
    for (int i = 0; i < s.length(); i++) {
      if (b[at + i] != (byte) s.charAt(i)) {
        return false;
      }
    }
    return true;
  }

  static String ascii(byte[] b, int at, int len) {
    return new String(b, at, len, StandardCharsets.ISO_8859_1);
  }

  /** The standard CRC-32 (UEFI's for GPT headers and entry arrays). */
  static long crc32(byte[] b, int off, int len) {
    java.util.zip.CRC32 c = new java.util.zip.CRC32();
    c.update(b, off, len);
    return c.getValue();
  }

  private static final int[] CRC_TABLE = new int[256];

  static {
    for (int n = 0; n < 256; n++) {
      int c = n;
      for (int k = 0; k < 8; k++) {
        c = (c & 1) != 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      }
      CRC_TABLE[n] = c;
    }
  }

  /**
   * The CRC-32 register after {@code b[off, off + len)} from {@code initial}, without the final
   * inversion: LVM2's checksum of labels, metadata area headers and metadata text.
   */
  static long crc32Raw(long initial, byte[] b, int off, int len) {
    int c = (int) initial;
    for (int i = off; i < off + len; i++) {
      c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
    }
    return c & 0xffffffffL;
  }

  /** A GUID in its mixed-endian on-disk form, as the usual upper-case text. */
  static String guid(byte[] b, int at) {
    StringBuilder s = new StringBuilder(36);
    int[] order = {3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15};
    for (int i : order) {
      if (i < 0) {
        s.append('-');
      } else {
        s.append(String.format("%02X", b[at + i] & 0xff));
      }
    }
    return s.toString();
  }
}
