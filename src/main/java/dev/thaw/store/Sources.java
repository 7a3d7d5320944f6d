package dev.thaw.store;

import java.io.EOFException;
import java.io.IOException;
import okio.BufferedSource;

/** Reading okio sources (HTTP bodies, throttled files) into arrays. Stateless. */
final class Sources {
  private Sources() {}

  /**
   * Reads exactly {@code len} bytes into {@code a[off, off + len)}.
   *
   * @throws EOFException when the source ends first
   */
  static void readFully(BufferedSource s, byte[] a, int off, int len) throws IOException {
    int done = 0;
    while (done < len) {
      int n = s.read(a, off + done, len - done);
      if (n < 0) {
        throw new EOFException("the data ends " + (len - done) + " bytes short of " + len);
      }
      done += n;
    }
  }
}
