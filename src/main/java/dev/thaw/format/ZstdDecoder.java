package dev.thaw.format;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdDecompressCtx;
import com.github.luben.zstd.ZstdException;
import com.github.luben.zstd.ZstdInputStreamNoFinalizer;
import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;
import java.io.ByteArrayInputStream;
import java.io.IOException;

/**
 * zstd decompression with one context per thread, created once and reused (a context per call is
 * the expensive part for large chunks). Thread-safe; one instance per codec.
 */
final class ZstdDecoder {
  private final ThreadLocal<ZstdDecompressCtx> dctx =
      ThreadLocal.withInitial(ZstdDecompressCtx::new);

  /**
   * Decompresses one or more frames into exactly {@code expectedLength} bytes when that is known
   * (>= 0), else into what the frame header says, else streaming; never more than {@code
   * maxLength}. The result is a buffer of {@code pool} (null: of its own) for the caller.
   */
  Buffer decompress(
      byte[] src, int off, int len, int expectedLength, int maxLength, BufferPool pool)
      throws FormatException {
    long size = expectedLength;
    if (size < 0) {
      try {
        size = Zstd.getFrameContentSize(src, off, len);
      } catch (RuntimeException e) {
        size = -1;
      }
    }
    try {
      if (size >= 0 && size <= maxLength) {
        Buffer out = Buffer.take(pool, (int) size);
        boolean ok = false;
        try {
          int n = dctx.get().decompressByteArray(out.array(), 0, (int) size, src, off, len);
          if (n != size) {
            throw new FormatException("zstd data decodes to " + n + " bytes, expected " + size);
          }
          ok = true;
          return out;
        } finally {
          if (!ok) {
            out.release();
          }
        }
      }
      if (size > maxLength) {
        throw new FormatException(
            "zstd frame of " + size + " bytes exceeds the limit of " + maxLength);
      }
      return Buffer.wrap(decompressStreaming(src, off, len, maxLength));
    } catch (ZstdException e) {
      if (expectedLength >= 0 && e.getErrorCode() == Zstd.errDstSizeTooSmall()) {
        throw new FormatException(
            "zstd data decodes to more than the chunk's "
                + expectedLength
                + " bytes (the index's length)");
      }
      throw new FormatException("zstd data is damaged: " + e.getMessage());
    }
  }

  private static byte[] decompressStreaming(byte[] src, int off, int len, int maxLength)
      throws FormatException {
    try (ZstdInputStreamNoFinalizer in =
        new ZstdInputStreamNoFinalizer(new ByteArrayInputStream(src, off, len))) {
      return Streams.readBounded(in, maxLength, "zstd");
    } catch (FormatException e) {
      throw e;
    } catch (IOException | RuntimeException e) {
      throw new FormatException("zstd data is damaged: " + e.getMessage());
    }
  }
}
