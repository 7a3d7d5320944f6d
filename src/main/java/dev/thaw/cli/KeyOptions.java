package dev.thaw.cli;

import dev.thaw.crypto.CryptConfig;
import dev.thaw.crypto.KeyFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** {@code --keyfile} and where its passphrase comes from. */
final class KeyOptions {
  @Option(names = "--keyfile", paramLabel = "FILE",
      description = "Encryption key file (needed for encrypted snapshots).")
  Path keyfile;

  @Option(names = "--password-file", paramLabel = "FILE",
      description = "Read the key passphrase from FILE (first line). Otherwise $"
          + Passphrases.ENV + " or a terminal prompt.")
  Path passwordFile;

  /** The key, or null when no key file was named. */
  CryptConfig load() throws IOException {
    if (keyfile == null) {
      return null;
    }
    byte[] text;
    try {
      text = Files.readAllBytes(keyfile);
    } catch (NoSuchFileException e) {
      throw new IOException("key file " + keyfile + " not found");
    }
    try {
      return KeyFile.parse(text).open(() -> Passphrases.read(passwordFile, "Passphrase for " + keyfile + ": ", false));
    } catch (IOException e) {
      throw new IOException("key file " + keyfile + ": " + e.getMessage(), e);
    }
  }
}
