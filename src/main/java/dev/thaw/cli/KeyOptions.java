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
  @Option(
      names = "--keyfile",
      paramLabel = "FILE",
      description = {
        "Key file: needed for encrypted snapshots; with it, only snapshots signed by "
            + "that key are opened (see --allow-unsigned). A backup encrypts with it (--crypt-mode)."
      })
  Path keyfile;

  @Option(
      names = "--password-file",
      paramLabel = "FILE",
      description =
          "Read the key passphrase from FILE (first line). Otherwise $"
              + Passphrases.ENV
              + ", the PBS client's $PBS_ENCRYPTION_PASSWORD (or its _FD, _FILE, _CMD or"
              + " systemd credential), or a terminal prompt.")
  Path passwordFile;

  /** Where the passphrase may come from ({@link Secrets#environment()}). */
  java.util.Map<String, String> env = System.getenv();

  private byte[] passphrase;

  /** Whether the key file is passphrase-protected (false without a key file). */
  boolean needsPassphrase() throws IOException {
    return keyfile != null && parse().kdf() != dev.thaw.crypto.Kdf.NONE;
  }

  /** The key file, read and parsed; every failure names the file. */
  private KeyFile parse() throws IOException {
    if (Files.isDirectory(keyfile)) {
      throw new IOException("key file " + keyfile + " is a directory; name the key file itself");
    }
    byte[] text;
    try {
      text = Files.readAllBytes(keyfile);
    } catch (NoSuchFileException e) {
      throw new IOException("key file " + keyfile + " not found");
    } catch (IOException e) {
      throw new IOException("key file " + keyfile + ": cannot read it: " + e.getMessage(), e);
    }
    try {
      return KeyFile.parse(text);
    } catch (IOException e) {
      throw new IOException("key file " + keyfile + ": " + e.getMessage(), e);
    }
  }

  /** The passphrase, read once from its source. */
  byte[] passphrase() {
    if (passphrase == null) {
      passphrase = Passphrases.read(passwordFile, env, "Passphrase for " + keyfile + ": ", false);
    }
    return passphrase;
  }

  /** The key, or null when no key file was named. */
  CryptConfig load() throws IOException {
    if (keyfile == null) {
      return null;
    }
    KeyFile file = parse();
    try {
      CryptConfig key = file.open(this::passphrase);
      if (env.get("THAW_DEBUG") != null) {
        System.err.println("thaw: AES-GCM by " + CryptConfig.gcmImplementation());
      }
      return key;
    } catch (IOException e) {
      throw new IOException("key file " + keyfile + ": " + e.getMessage(), e);
    }
  }
}
