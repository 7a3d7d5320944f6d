package dev.thaw.cli;

import dev.thaw.crypto.CryptConfig;
import dev.thaw.image.KeyPolicy;
import picocli.CommandLine.Option;

/** {@code --allow-unsigned}, for the commands that open snapshots; see {@link KeyPolicy}. */
final class TrustOptions {
  @Option(
      names = "--allow-unsigned",
      description = {
        "With --keyfile, open a snapshot whose manifest is not signed by that key "
            + "anyway (with a warning). Anyone who can write to the datastore can make one."
      })
  boolean allowUnsigned;

  /** The policy for {@code key} (or none); its warnings and notes go to stderr. */
  KeyPolicy policy(CryptConfig key) {
    return KeyPolicy.of(
        key,
        allowUnsigned,
        note -> {
          System.err.println("thaw: " + note);
          System.err.flush();
        });
  }
}
