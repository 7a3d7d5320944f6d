package dev.thaw.fetch;

import dev.thaw.format.Digest;
import java.io.IOException;

/**
 * A chunk could not be delivered: missing from the store, unreadable after retries, or failing
 * verification twice. Names the chunk and where it was fetched from.
 */
public class ChunkFetchException extends IOException {
  private static final long serialVersionUID = 1L;
  private final transient Digest digest;
  private final String location;
  private final boolean missing;

  ChunkFetchException(
      Digest digest, String location, String reason, boolean missing, Throwable cause) {
    super(message(digest, location, reason), cause);
    this.digest = digest;
    this.location = location;
    this.missing = missing;
  }

  /** "chunk HEX (LOCATION): REASON", without saying twice what a store's message said already. */
  private static String message(Digest digest, String location, String reason) {
    String r = reason == null ? "" : reason;
    String prefix = "chunk " + digest.hex();
    if (r.startsWith(prefix + ": ")) {
      r = r.substring(prefix.length() + 2);
    }
    return prefix + (r.contains(location) ? "" : " (" + location + ")") + ": " + r;
  }

  public Digest digest() {
    return digest;
  }

  /** The store location (path or URL) of the chunk. */
  public String location() {
    return location;
  }

  /**
   * Whether the store does not have the chunk at all (as opposed to a damaged or unreachable one).
   */
  public boolean missing() {
    return missing;
  }
}
