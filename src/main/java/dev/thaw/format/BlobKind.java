package dev.thaw.format;

/** The four kinds of DataBlob, told apart by their 8-byte magic. */
public enum BlobKind {
  UNCOMPRESSED(Magic.UNCOMPRESSED_BLOB, false, false),
  ZSTD(Magic.COMPRESSED_BLOB, true, false),
  ENCRYPTED(Magic.ENCRYPTED_BLOB, false, true),
  ENCRYPTED_ZSTD(Magic.ENCR_COMPR_BLOB, true, true);

  @SuppressWarnings("ImmutableEnumChecker") // never written, and handed out only as a copy
  private final byte[] magic;

  private final boolean compressed;
  private final boolean encrypted;

  BlobKind(byte[] magic, boolean compressed, boolean encrypted) {
    this.magic = magic;
    this.compressed = compressed;
    this.encrypted = encrypted;
  }

  /** The magic bytes (a copy). */
  byte[] magic() {
    return magic.clone();
  }

  public boolean compressed() {
    return compressed;
  }

  public boolean encrypted() {
    return encrypted;
  }
}
