package dev.thaw.format;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;

/** Proxmox Backup file magics: the first 8 bytes of SHA-256 of a descriptive text. */
final class Magic {
  static final byte[] FIXED_INDEX = of("Proxmox Backup fixed sized chunk index v1.0");
  static final byte[] DYNAMIC_INDEX = of("Proxmox Backup dynamic sized chunk index v1.0");
  static final byte[] UNCOMPRESSED_BLOB = of("Proxmox Backup uncompressed blob v1.0");
  static final byte[] COMPRESSED_BLOB = of("Proxmox Backup zstd compressed blob v1.0");
  static final byte[] ENCRYPTED_BLOB = of("Proxmox Backup encrypted blob v1.0");
  static final byte[] ENCR_COMPR_BLOB = of("Proxmox Backup zstd compressed encrypted blob v1.0");

  private Magic() {}

  /** First 8 bytes of SHA-256 of {@code text}. */
  static byte[] of(String text) {
    try {
      byte[] h = MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
      return Arrays.copyOf(h, 8);
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }

  static boolean matches(byte[] magic, byte[] data, int offset) {
    return data.length - offset >= 8 && Arrays.equals(magic, 0, 8, data, offset, offset + 8);
  }
}
