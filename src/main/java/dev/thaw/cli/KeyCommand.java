package dev.thaw.cli;

import dev.thaw.crypto.CryptConfig;
import dev.thaw.crypto.Kdf;
import dev.thaw.crypto.KeyFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "key",
    mixinStandardHelpOptions = true,
    description = "Create and inspect encryption key files.",
    subcommands = {KeyCommand.Create.class, KeyCommand.Info.class})
final class KeyCommand implements Runnable {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    throw new picocli.CommandLine.ParameterException(
        spec.commandLine(), "name a subcommand: create or info");
  }

  @Command(
      name = "create",
      mixinStandardHelpOptions = true,
      description = {
        "Create a key file with a new random key.",
        "The passphrase comes from --password-file, $" + Passphrases.ENV + " or a terminal prompt."
      })
  static final class Create implements Callable<Integer> {
    enum KdfChoice {
      scrypt,
      none
    }

    @Option(
        names = "--kdf",
        defaultValue = "scrypt",
        paramLabel = "KDF",
        description =
            "scrypt (passphrase-protected) or none (key in the clear). Default: ${DEFAULT-VALUE}.")
    KdfChoice kdf;

    @Option(
        names = "--password-file",
        paramLabel = "FILE",
        description = "Read the passphrase from FILE.")
    Path passwordFile;

    @Parameters(paramLabel = "FILE", description = "The key file to create (must not exist).")
    Path file;

    /** Where the passphrase may come from ({@link Secrets#environment()}). */
    java.util.Map<String, String> env = System.getenv();

    @Override
    public Integer call() throws Exception {
      if (Files.exists(file)) {
        throw new IllegalArgumentException(
            "key file " + file + " exists already; not overwriting it");
      }
      Kdf k = kdf == KdfChoice.scrypt ? Kdf.SCRYPT : Kdf.NONE;
      byte[] pass =
          k == Kdf.NONE ? null : Passphrases.read(passwordFile, env, "New passphrase: ", true);
      KeyFile key = KeyFile.create(k, pass, new SecureRandom());
      Files.write(file, key.toJson(), StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
      Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
      CryptConfig c = key.open(() -> pass);
      System.err.println(
          "created key file " + file + " (kdf " + kdf + "), fingerprint " + c.shortFingerprint());
      System.err.println(
          "keep a copy of it apart from the backups: without it they cannot be restored");
      return 0;
    }
  }

  @Command(
      name = "info",
      mixinStandardHelpOptions = true,
      description =
          "Show a key file's kdf, creation time and fingerprint (asks for the passphrase).")
  static final class Info implements Callable<Integer> {
    @picocli.CommandLine.Mixin KeyOptions key;

    @Parameters(paramLabel = "FILE", description = "The key file.")
    Path file;

    @Override
    public Integer call() throws Exception {
      KeyFile kf = KeyFile.parse(Files.readAllBytes(file));
      key.keyfile = file;
      CryptConfig c = key.load();
      System.out.println("kdf: " + kf.kdf().name().toLowerCase(java.util.Locale.ROOT));
      System.out.println("created: " + kf.created());
      System.out.println("fingerprint: " + c.shortFingerprint());
      return 0;
    }
  }
}
