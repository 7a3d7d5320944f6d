package dev.thaw.format;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;

/** Reading decompressor streams with a bound on the output. Stateless. */
final class Streams {
  private Streams() {}

  /**
   * Reads {@code in} to its end.
   *
   * @param what the format, for messages
   * @throws FormatException when more than {@code maxLength} bytes come out
   */
  static byte[] readBounded(InputStream in, int maxLength, String what) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] buf = new byte[1 << 16];
    int n;
    while ((n = in.read(buf)) > 0) {
      out.write(buf, 0, n);
      if (out.size() > maxLength) {
        throw new FormatException(what + " data exceeds the limit of " + maxLength + " bytes");
      }
    }
    return out.toByteArray();
  }
}
