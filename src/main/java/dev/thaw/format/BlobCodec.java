package dev.thaw.format;

import com.github.luben.zstd.ZstdCompressCtx;
import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;
import dev.thaw.crypto.CryptConfig;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.zip.CRC32;
import javax.crypto.AEADBadTagException;

/**
 * Encodes and decodes Proxmox Backup DataBlobs (chunk files and {@code *.blob} files): CRC-32,
 * optional AES-256-GCM, optional zstd, and the chunk digest check.
 *
 * <p>Thread-safe. Each thread that uses a codec gets its own zstd contexts, created once and reused
 * (a context per call is the expensive part of zstd for 4 MiB chunks); share one codec per snapshot
 * key and call it from a fixed CPU pool.
 */
public final class BlobCodec implements ChunkCodec {
  /** Largest blob accepted. */
  public static final int MAX_BLOB = 128 * 1024 * 1024;

  /** Largest decoded chunk accepted. */
  public static final int MAX_CHUNK = 16 * 1024 * 1024;

  private static final int PLAIN_HEADER = 12;
  private static final int CRYPT_HEADER = 44;

  private final CryptConfig crypt;
  private final ZstdDecoder zstd = new ZstdDecoder();
  private final ThreadLocal<ZstdCompressCtx> cctx =
      ThreadLocal.withInitial(
          () -> {
            ZstdCompressCtx c = new ZstdCompressCtx();
            c.setLevel(1);
            c.setContentSize(true);
            return c;
          });
  private final ThreadLocal<MessageDigest> sha = ThreadLocal.withInitial(BlobCodec::newSha256);
  private final SecureRandom random = new SecureRandom();
  private final java.util.concurrent.ConcurrentHashMap<Integer, Digest> zeroDigests =
      new java.util.concurrent.ConcurrentHashMap<>();

  /** A codec for plain snapshots ({@code crypt == null}) or for one key. */
  public BlobCodec(CryptConfig crypt) {
    this.crypt = crypt;
  }

  /** The key this codec uses, or null. */
  public CryptConfig crypt() {
    return crypt;
  }

  /** The digest of a chunk's plain data: SHA-256, keyed with the id key when encrypted. */
  public Digest digest(byte[] data, int offset, int length) {
    if (crypt != null) {
      return Digest.of(crypt.digest(data, offset, length));
    }
    MessageDigest md = sha.get();
    md.update(data, offset, length);
    return Digest.of(md.digest());
  }

  /**
   * The digest an all-zero chunk of {@code length} bytes has under this codec's key; such chunks
   * are served as zeros and never fetched. Computed once per length.
   */
  public Digest zeroDigest(int length) {
    return zeroDigests.computeIfAbsent(
        length,
        n -> {
          byte[] zeros = new byte[n];
          return digest(zeros, 0, n);
        });
  }

  @Override
  public boolean isZero(Digest digest, int length) {
    return digest.equals(zeroDigest(length));
  }

  /** The kind of a blob by its magic. */
  public static BlobKind kind(byte[] blob) throws FormatException {
    return kind(blob, 0, blob.length);
  }

  /** The kind of the blob in {@code a[off, off + len)} (bytes past it are not its own). */
  private static BlobKind kind(byte[] a, int off, int len) throws FormatException {
    for (BlobKind k : BlobKind.values()) {
      if (len >= 8 && Magic.matches(k.magic(), a, off)) {
        return k;
      }
    }
    throw new FormatException("not a data blob (unknown magic)");
  }

  /**
   * Decodes a chunk blob and checks that its data hashes to {@code expected}. A codec with a key
   * takes encrypted chunks only and a codec without one plain chunks only, as an index's crypt-mode
   * demands (PBS refuses "Index and chunk CryptMode don't match" the same way).
   *
   * @param expectedLength the chunk length the index says, or -1 when only bounded by {@link
   *     #MAX_CHUNK}
   * @throws FormatException on any mismatch; the message says which check failed
   */
  @Override
  public byte[] decodeChunk(byte[] blob, Digest expected, int expectedLength)
      throws FormatException {
    return decodeChunk(Buffer.wrap(blob), expected, expectedLength, null).exactArray();
  }

  /**
   * {@link #decodeChunk(byte[], Digest, int)} without copies: an uncompressed plain chunk is
   * checked where it lies in {@code blob} (CRC and digest) and returned as that buffer, its range
   * narrowed to the data; a compressed or encrypted one is decoded into one buffer of {@code pool}
   * (null: a new array), and {@code blob} released.
   */
  @Override
  public Buffer decodeChunk(Buffer blob, Digest expected, int expectedLength, BufferPool pool)
      throws FormatException {
    Buffer data = null;
    try {
      if (blob.length() >= 8
          && kind(blob.array(), blob.offset(), blob.length()).encrypted() != (crypt != null)) {
        throw new FormatException(
            crypt != null
                ? "chunk is not encrypted, but its archive is (crypt-mode encrypt)"
                : "chunk is encrypted, but its archive is not (crypt-mode none or sign-only)");
      }
      Buffer b = blob;
      blob = null;
      data = decode(b, expectedLength, MAX_CHUNK, pool);
      if (expectedLength >= 0 && data.length() != expectedLength) {
        throw new FormatException(
            "chunk has " + data.length() + " bytes, index says " + expectedLength);
      }
      Digest actual = digest(data.array(), data.offset(), data.length());
      if (!actual.equals(expected)) {
        throw new FormatException("digest mismatch: data hashes to " + actual.hex());
      }
      Buffer result = data;
      data = null;
      return result;
    } finally {
      if (blob != null) {
        blob.release();
      }
      if (data != null) {
        data.release();
      }
    }
  }

  /**
   * Decodes a blob: checks its CRC, decrypts and decompresses. Does not check a digest.
   *
   * @param expectedLength exact decoded length if known, else -1
   * @param maxLength bound on the decoded length
   */
  public byte[] decode(byte[] blob, int expectedLength, int maxLength) throws FormatException {
    return decode(Buffer.wrap(blob), expectedLength, maxLength, null).exactArray();
  }

  /**
   * {@link #decode(byte[], int, int)} of the bytes in {@code blob}, with the ownership rules of
   * {@link #decodeChunk(Buffer, Digest, int, BufferPool)}.
   */
  private Buffer decode(Buffer blob, int expectedLength, int maxLength, BufferPool pool)
      throws FormatException {
    Buffer payload = blob; // what this call holds and must release unless it returns it
    try {
      byte[] a = blob.array();
      int off = blob.offset();
      int len = blob.length();
      if (len > MAX_BLOB) {
        throw new FormatException("blob of " + len + " bytes exceeds the 128 MiB limit");
      }
      BlobKind kind = kind(a, off, len);
      int header = kind.encrypted() ? CRYPT_HEADER : PLAIN_HEADER;
      if (len < header) {
        throw new FormatException("blob truncated: " + len + " bytes");
      }
      int storedCrc = ByteBuffer.wrap(a, off + 8, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
      CRC32 crc = new CRC32();
      crc.update(a, off + header, len - header);
      if ((int) crc.getValue() != storedCrc) {
        throw new FormatException("blob CRC mismatch (damaged or truncated)");
      }
      if (kind.encrypted()) {
        if (crypt == null) {
          throw new FormatException("blob is encrypted and no key was given (--keyfile)");
        }
        payload = decrypt(blob, header, pool);
        blob.release();
      } else {
        blob.range(off + header, len - header);
      }
      if (!kind.compressed()) {
        if (payload.length() > maxLength) {
          throw new FormatException(
              "blob data of " + payload.length() + " bytes exceeds the limit of " + maxLength);
        }
        Buffer result = payload;
        payload = null;
        return result;
      }
      return zstd.decompress(
          payload.array(), payload.offset(), payload.length(), expectedLength, maxLength, pool);
    } finally {
      if (payload != null) {
        payload.release();
      }
    }
  }

  /**
   * The decrypted payload of an encrypted blob, in a new buffer; {@code blob} is left to the
   * caller.
   */
  private Buffer decrypt(Buffer blob, int header, BufferPool pool) throws FormatException {
    byte[] a = blob.array();
    int off = blob.offset();
    int ctLen = blob.length() - header;
    if (a.length - off - blob.length() < CryptConfig.TAG_LENGTH) {
      // no room behind the ciphertext for the tag the JCA wants there: a copy that has it
      byte[] room = new byte[blob.length() + CryptConfig.TAG_LENGTH];
      System.arraycopy(a, off, room, 0, blob.length());
      a = room;
      off = 0;
    }
    Buffer plain = Buffer.take(pool, ctLen);
    try {
      crypt.decrypt(a, off + 12, a, off + 28, a, off + header, ctLen, plain.array(), 0);
      return plain;
    } catch (AEADBadTagException e) {
      plain.release();
      throw new FormatException("blob authentication failed (wrong key, or data altered)");
    } catch (RuntimeException e) {
      plain.release();
      throw e;
    }
  }

  /**
   * Encodes data as a blob: zstd level 1 when {@code compress} and the result is smaller, then
   * encrypted when this codec has a key.
   */
  public byte[] encode(byte[] data, int offset, int length, boolean compress) {
    byte[] body = null;
    if (compress) {
      byte[] c = cctx.get().compress(slice(data, offset, length));
      if (c.length < length) {
        body = c;
      }
    }
    boolean compressed = body != null;
    if (!compressed) {
      body = slice(data, offset, length);
    }
    if (crypt == null) {
      BlobKind kind = compressed ? BlobKind.ZSTD : BlobKind.UNCOMPRESSED;
      return assemble(kind, null, null, body, 0, body.length);
    }
    byte[] iv = new byte[16];
    random.nextBytes(iv);
    byte[] tagAndCt = crypt.encrypt(body, 0, body.length, iv);
    BlobKind kind = compressed ? BlobKind.ENCRYPTED_ZSTD : BlobKind.ENCRYPTED;
    return assemble(kind, iv, tagAndCt, tagAndCt, 16, tagAndCt.length - 16);
  }

  private static byte[] assemble(
      BlobKind kind, byte[] iv, byte[] tag, byte[] body, int off, int len) {
    int header = kind.encrypted() ? CRYPT_HEADER : PLAIN_HEADER;
    byte[] out = new byte[header + len];
    System.arraycopy(kind.magic(), 0, out, 0, 8);
    System.arraycopy(body, off, out, header, len);
    CRC32 crc = new CRC32();
    crc.update(out, header, len);
    ByteBuffer.wrap(out, 8, 4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) crc.getValue());
    if (kind.encrypted()) {
      System.arraycopy(iv, 0, out, 12, 16);
      System.arraycopy(tag, 0, out, 28, 16);
    }
    return out;
  }

  private static byte[] slice(byte[] data, int offset, int length) {
    if (offset == 0 && length == data.length) {
      return data;
    }
    byte[] s = new byte[length];
    System.arraycopy(data, offset, s, 0, length);
    return s;
  }

  private static MessageDigest newSha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }
}
