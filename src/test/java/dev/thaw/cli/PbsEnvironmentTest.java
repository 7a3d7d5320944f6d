package dev.thaw.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.thaw.testing.PbsReaderDouble;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * thaw reads the settings proxmox-backup-client reads from its environment, from the same sources
 * and in the same order, so that a set-up made for the PBS client works for thaw unchanged.
 */
class PbsEnvironmentTest {
  @TempDir Path dir;

  private PbsEnvironment env(Map<String, String> vars) {
    return new PbsEnvironment(vars, dir.resolve("fd"));
  }

  private Path write(String name, String content) throws Exception {
    Path p = dir.resolve(name);
    Files.createDirectories(p.getParent());
    return Files.writeString(p, content, StandardCharsets.UTF_8);
  }

  @Test
  void aSecretComesFromTheFirstSourceSetInThePbsClientsOrder() throws Exception {
    write("fd/7", "from-fd\nsecond line\n");
    Path file = write("secret.txt", "from-file\r\nsecond line\n");
    write("creds/proxmox-backup-client.password", "from-credential\n");
    Map<String, String> all = new HashMap<>();
    all.put("PBS_PASSWORD", "from-env\nsecond line");
    all.put("PBS_PASSWORD_FD", "7");
    all.put("PBS_PASSWORD_FILE", file.toString());
    all.put("PBS_PASSWORD_CMD", "printf 'from-cmd\\nsecond line\\n'");
    all.put("CREDENTIALS_DIRECTORY", dir.resolve("creds").toString());

    String[] order = {"PBS_PASSWORD", "PBS_PASSWORD_FD", "PBS_PASSWORD_FILE", "PBS_PASSWORD_CMD"};
    String[] expected = {"from-env", "from-fd", "from-file", "from-cmd"};
    for (int i = 0; i < order.length; i++) {
      assertEquals(Optional.of(expected[i]), env(all).password(), "with " + order[i] + " first");
      all.remove(order[i]);
    }
    // a credential is the whole file, its final line break dropped
    assertEquals(Optional.of("from-credential"), env(all).password());
    all.remove("CREDENTIALS_DIRECTORY");
    assertEquals(Optional.empty(), env(all).password());
  }

  @Test
  void everySettingHasTheSameSourcesAndItsOwnCredential() throws Exception {
    write("creds/proxmox-backup-client.repository", "tok@pbs!r@host:store");
    write("creds/proxmox-backup-client.fingerprint", "ab:cd\n");
    write("creds/proxmox-backup-client.encryption-password", "key pass\n");
    Path fp = write("fp.txt", "ef:01\n");
    Map<String, String> vars =
        Map.of(
            "CREDENTIALS_DIRECTORY", dir.resolve("creds").toString(),
            "PBS_FINGERPRINT_FILE", fp.toString(),
            "PBS_ENCRYPTION_PASSWORD_CMD", "echo 'key pass 2'");
    PbsEnvironment e = env(vars);
    assertEquals(Optional.of("tok@pbs!r@host:store"), e.repository(PbsEnvironment.Parts.NONE));
    assertEquals(Optional.of("ef:01"), e.fingerprint());
    assertEquals(Optional.of("key pass 2"), e.encryptionPassword());
    assertEquals(Optional.empty(), e.password());

    PbsEnvironment credentialsOnly =
        env(Map.of("CREDENTIALS_DIRECTORY", dir.resolve("creds").toString()));
    assertEquals(Optional.of("ab:cd"), credentialsOnly.fingerprint());
    assertEquals(Optional.of("key pass"), credentialsOnly.encryptionPassword());
  }

  @Test
  void aCommandRunsOnceAndMustSucceed() throws Exception {
    Path count = dir.resolve("count");
    PbsEnvironment e =
        env(Map.of("PBS_PASSWORD_CMD", "sh -c 'echo run >> \"$0\"; echo s3cret' " + count));
    assertEquals(Optional.of("s3cret"), e.password());
    assertEquals(Optional.of("s3cret"), e.password());
    assertEquals(List.of("run"), Files.readAllLines(count), "the command ran once");

    IllegalStateException failed =
        assertThrows(
            IllegalStateException.class,
            () -> env(Map.of("PBS_PASSWORD_CMD", "sh -c 'echo s3cret; exit 3'")).password());
    assertTrue(failed.getMessage().contains("PBS_PASSWORD_CMD"), failed.getMessage());
    assertTrue(failed.getMessage().contains("exit status 3"), failed.getMessage());
    assertFalse(failed.getMessage().contains("s3cret"), failed.getMessage());

    UncheckedIOException missing =
        assertThrows(
            UncheckedIOException.class,
            () -> env(Map.of("PBS_PASSWORD_CMD", "/no/such/command")).password());
    assertTrue(missing.getCause().getMessage().contains("/no/such/command"), missing.toString());
  }

  @Test
  void failuresNameTheVariableOrFile() {
    IllegalArgumentException badFd =
        assertThrows(
            IllegalArgumentException.class, () -> env(Map.of("PBS_PASSWORD_FD", "x")).password());
    assertTrue(badFd.getMessage().contains("PBS_PASSWORD_FD"), badFd.getMessage());

    UncheckedIOException closedFd =
        assertThrows(
            UncheckedIOException.class, () -> env(Map.of("PBS_PASSWORD_FD", "9")).password());
    assertTrue(closedFd.getCause().getMessage().contains("PBS_PASSWORD_FD 9"), closedFd.toString());

    Path nowhere = dir.resolve("nowhere");
    UncheckedIOException noFile =
        assertThrows(
            UncheckedIOException.class,
            () -> env(Map.of("PBS_PASSWORD_FILE", nowhere.toString())).password());
    assertEquals(
        "cannot read PBS_PASSWORD_FILE " + nowhere + ": it does not exist",
        noFile.getCause().getMessage());
  }

  @Test
  void withoutPbsRepositoryTheRepositoryIsMadeOfItsParts() {
    assertEquals(
        Optional.of("tok@pbs!r@pbs.example:8008:store1"),
        env(Map.of(
                "PBS_SERVER", "pbs.example",
                "PBS_PORT", "8008",
                "PBS_AUTH_ID", "tok@pbs!r",
                "PBS_DATASTORE", "store1"))
            .repository(PbsEnvironment.Parts.NONE));
    assertEquals(
        Optional.of("[fd00::1]:store1"),
        env(Map.of("PBS_SERVER", "fd00::1", "PBS_DATASTORE", "store1"))
            .repository(PbsEnvironment.Parts.NONE));
    assertEquals(
        Optional.of("localhost:8009:store1"),
        env(Map.of("PBS_PORT", "8009", "PBS_DATASTORE", "store1"))
            .repository(PbsEnvironment.Parts.NONE));
    assertEquals(
        Optional.of("store1"),
        env(Map.of("PBS_DATASTORE", "store1")).repository(PbsEnvironment.Parts.NONE));
    assertEquals(
        Optional.of("a@pbs!b@h:s"),
        env(Map.of("PBS_REPOSITORY", " a@pbs!b@h:s ", "PBS_DATASTORE", "other"))
            .repository(PbsEnvironment.Parts.NONE),
        "PBS_REPOSITORY comes first");
    assertEquals(Optional.empty(), env(Map.of()).repository(PbsEnvironment.Parts.NONE));

    // parts on the command line come before PBS_REPOSITORY, each missing one from the environment
    Map<String, String> vars =
        Map.of(
            "PBS_REPOSITORY", "a@pbs!b@h:s",
            "PBS_SERVER", "pbs.example",
            "PBS_AUTH_ID", "tok@pbs!r",
            "PBS_DATASTORE", "store1");
    assertEquals(
        Optional.of("tok@pbs!r@pbs.example:8009:store2"),
        env(vars).repository(new PbsEnvironment.Parts(null, "8009", null, "store2")));
    assertEquals(
        Optional.of("tok@pbs!r@other:store1"),
        env(vars).repository(new PbsEnvironment.Parts("other", " ", "", null)));

    IllegalArgumentException noStore =
        assertThrows(
            IllegalArgumentException.class,
            () -> env(Map.of("PBS_SERVER", "pbs.example")).repository(PbsEnvironment.Parts.NONE));
    assertTrue(noStore.getMessage().contains("PBS_DATASTORE"), noStore.getMessage());
    for (String port : List.of("0", "65536", "http", "99999999")) {
      IllegalArgumentException bad =
          assertThrows(
              IllegalArgumentException.class,
              () ->
                  env(Map.of("PBS_PORT", port, "PBS_DATASTORE", "s"))
                      .repository(PbsEnvironment.Parts.NONE),
              port);
      assertTrue(bad.getMessage().contains("PBS_PORT"), bad.getMessage());
    }
  }

  @Test
  void commandsAreSplitIntoWordsAsTheShellSplitsThem() {
    List<String> etc = List.of("ls", "/etc");
    for (String s :
        List.of(
            "ls /etc", "ls \"/etc\"", "ls '/etc'", " ls\t/etc\n", "ls /e\"t\"c", "ls /e't''c'")) {
      assertEquals(etc, PbsEnvironment.words(s, "CMD"), s);
    }
    assertEquals(List.of("ls", "/etc 08x"), PbsEnvironment.words("ls /etc\\ \\08x", "CMD"));
    assertEquals(List.of("ls", "/etc \\08x"), PbsEnvironment.words("ls \"/etc \\08x\"", "CMD"));
    assertEquals(
        List.of("echo", "a\"b$c\\d"), PbsEnvironment.words("echo \"a\\\"b\\$c\\\\d\"", "CMD"));
    assertEquals(List.of("echo", "$HOME", ""), PbsEnvironment.words("echo '$HOME' ''", "CMD"));
    for (String unclosed : List.of("echo 'a", "echo \"a", "echo \"a\\", "echo a\\")) {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class, () -> PbsEnvironment.words(unclosed, "PBS_X_CMD"));
      assertTrue(e.getMessage().contains("PBS_X_CMD"), e.getMessage());
    }
  }

  @Test
  void aKeysPassphraseComesFromThePbsClientsVariablesOnlyWhenOpeningAKey() throws Exception {
    Path secret = write("key-pass", "from pbs\n");
    Map<String, String> vars = Map.of("PBS_ENCRYPTION_PASSWORD_FILE", secret.toString());
    assertArrayEquals(
        "from pbs".getBytes(StandardCharsets.UTF_8), Passphrases.read(null, vars, "p: ", false));
    Map<String, String> both = new HashMap<>(vars);
    both.put(Passphrases.ENV, "from thaw");
    assertArrayEquals(
        "from thaw".getBytes(StandardCharsets.UTF_8), Passphrases.read(null, both, "p: ", false));
    // a new key's passphrase is never taken from where the PBS client finds an existing key's
    // (tests run without a terminal, so no prompt can answer instead)
    IllegalStateException create =
        assertThrows(IllegalStateException.class, () -> Passphrases.read(null, vars, "p: ", true));
    assertTrue(create.getMessage().contains(Passphrases.ENV), create.getMessage());
  }

  @Test
  void aCommandFindsItsPbsThroughThePbsClientsEnvironment() throws Exception {
    Path src = Files.writeString(dir.resolve("disk.img"), "a small disk image");
    String snapshot = CommandRun.backup(dir.resolve("ds"), src);

    String token = "thaw@pbs!restore";
    try (PbsReaderDouble pbs =
        new PbsReaderDouble(
            0,
            Map.of("store1", dir.resolve("ds")),
            Map.of(
                token,
                new PbsReaderDouble.Token("s3cret", Set.of("Datastore.Read", "Datastore.Audit"))),
            Duration.ZERO)) {
      write("creds/proxmox-backup-client.fingerprint", pbs.fingerprint());
      Map<String, String> vars =
          Map.of(
              "PBS_AUTH_ID",
              token,
              "PBS_SERVER",
              "127.0.0.1",
              "PBS_PORT",
              Integer.toString(pbs.port()),
              "PBS_DATASTORE",
              "store1",
              "PBS_PASSWORD_CMD",
              "echo s3cret",
              "CREDENTIALS_DIRECTORY",
              dir.resolve("creds").toString());
      CommandRun ls = CommandRun.of(vars, "ls");
      assertEquals(0, ls.code(), ls.err());
      assertTrue(ls.out().contains(snapshot), ls.out());

      // the same parts on the command line, as the PBS client 4.2 takes them, before the
      // environment's
      Map<String, String> elsewhere = new HashMap<>(vars);
      elsewhere.put("PBS_PORT", "1");
      elsewhere.put("PBS_DATASTORE", "nostore");
      CommandRun cli =
          CommandRun.of(
              elsewhere, "ls", "--port", Integer.toString(pbs.port()), "--datastore", "store1");
      assertEquals(0, cli.code(), cli.err());
      assertTrue(cli.out().contains(snapshot), cli.out());
      CommandRun both =
          CommandRun.of(vars, "ls", "--repository", "x@pbs!y@h:s", "--server", "127.0.0.1");
      assertEquals(2, both.code(), both.err());
      assertTrue(both.err().contains("--repository and --server"), both.err());

      Map<String, String> wrong = new HashMap<>(vars);
      wrong.put("PBS_PASSWORD_CMD", "echo not-the-secret");
      CommandRun refused = CommandRun.of(wrong, "ls");
      assertEquals(1, refused.code(), refused.err());
      assertTrue(refused.err().contains("refused the API token " + token), refused.err());
      assertFalse(refused.err().contains("not-the-secret"), refused.err());
    }
  }
}
