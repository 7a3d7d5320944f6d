package dev.thaw.store;

import java.util.regex.Pattern;

/**
 * How thaw talks to a Proxmox Backup Server ({@code pbs://} stores): the namespace its snapshot
 * names are relative to, the expected certificate fingerprint, and the API token's secret. The
 * secret never appears in {@link #toString()} or any message. Immutable.
 *
 * @param namespace PBS namespace ({@code a/b}), empty for the root
 * @param fingerprint SHA-256 of the server's certificate as PBS shows it (32 lower-case hex pairs
 *     joined by ':'), or null for none
 * @param secret the API token's secret, or null when none was given
 */
public record PbsOptions(String namespace, String fingerprint, String secret) {
  private static final Pattern FINGERPRINT = Pattern.compile("(?:[0-9a-f]{2}:){31}[0-9a-f]{2}");

  /** No namespace, fingerprint or secret. */
  public static final PbsOptions NONE = new PbsOptions("", null, null);

  public PbsOptions {
    namespace = namespace == null ? "" : namespace.strip();
    PbsRepository.parseNamespace(namespace);
    if (fingerprint != null) {
      fingerprint = fingerprint.strip().toLowerCase(java.util.Locale.ROOT);
      if (!FINGERPRINT.matcher(fingerprint).matches()) {
        throw new IllegalArgumentException(
            "PBS_FINGERPRINT must be the SHA-256 fingerprint of the"
                + " server's certificate as PBS shows it: 32 hex pairs joined by ':'");
      }
    }
  }

  @Override
  public String toString() {
    return "PbsOptions[ns="
        + namespace
        + ", fingerprint="
        + fingerprint
        + (secret != null ? ", secret=***" : "")
        + "]";
  }
}
