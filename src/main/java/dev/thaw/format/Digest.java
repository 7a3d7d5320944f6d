package dev.thaw.format;

import java.util.Arrays;
import java.util.HexFormat;

/**
 * A 32-byte chunk digest (SHA-256, keyed for encrypted snapshots). Immutable and thread-safe;
 * equality is by value, so a digest can key maps and caches.
 */
public final class Digest implements Comparable<Digest> {
  /** Length of a digest in bytes. */
  public static final int LENGTH = 32;

  private final byte[] bytes;
  private final int hash;

  private Digest(byte[] bytes) {
    this.bytes = bytes;
    this.hash = Arrays.hashCode(bytes);
  }

  /** Copies {@code LENGTH} bytes from {@code src} at {@code offset}. */
  public static Digest of(byte[] src, int offset) {
    if (src.length - offset < LENGTH) {
      throw new IllegalArgumentException("need " + LENGTH + " bytes at offset " + offset);
    }
    return new Digest(Arrays.copyOfRange(src, offset, offset + LENGTH));
  }

  /** Wraps a copy of a 32-byte array. */
  public static Digest of(byte[] bytes) {
    if (bytes.length != LENGTH) {
      throw new IllegalArgumentException("a digest has 32 bytes, not " + bytes.length);
    }
    return new Digest(bytes.clone());
  }

  /** Parses 64 hex digits. */
  public static Digest parse(String hex) {
    if (hex.length() != 2 * LENGTH) {
      throw new IllegalArgumentException("a digest has 64 hex digits: " + hex);
    }
    return new Digest(HexFormat.of().parseHex(hex));
  }

  /** Returns a copy of the bytes. */
  public byte[] toBytes() {
    return bytes.clone();
  }

  /** Writes the 32 bytes into {@code dst} at {@code offset}. */
  public void copyTo(byte[] dst, int offset) {
    System.arraycopy(bytes, 0, dst, offset, LENGTH);
  }

  /** Lower-case hex, 64 characters. */
  public String hex() {
    return HexFormat.of().formatHex(bytes);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Digest d && d.hash == hash && Arrays.equals(d.bytes, bytes);
  }

  @Override
  public int hashCode() {
    return hash;
  }

  @Override
  public int compareTo(Digest o) {
    return Arrays.compareUnsigned(bytes, o.bytes);
  }

  @Override
  public String toString() {
    return hex();
  }
}
