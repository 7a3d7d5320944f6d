package dev.thaw.cli;

import dev.thaw.backup.Backup;
import dev.thaw.crypto.CryptConfig;
import dev.thaw.format.FormatException;
import dev.thaw.format.Manifest;
import dev.thaw.store.SnapshotPath;
import dev.thaw.store.Stores;
import dev.thaw.store.WritableStore;
import dev.thaw.store.WriteOptions;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "backup",
    mixinStandardHelpOptions = true,
    description = {
      "Back up files or block devices as images into a datastore.",
      "Prints the snapshot name (TYPE/ID/TIME) as the last line. A datastore that a Proxmox "
          + "Backup Server manages is refused (see --as-datastore-owner); a new one gets PBS's .lock "
          + "and .chunks (all of PBS's layout with --pbs-layout)."
    })
final class BackupCommand implements Callable<Integer> {
  @Option(
      names = "--store",
      required = true,
      paramLabel = "DS",
      description =
          "Datastore: a directory (or file:///path; created if missing) or s3://BUCKET/PREFIX.")
  String store;

  @Mixin S3Flags s3;

  @Option(
      names = "--id",
      required = true,
      paramLabel = "TYPE/ID",
      description = "Backup group, e.g. vm/100 (TYPE is vm, ct or host).")
  String id;

  @Option(
      names = {"--threads", "--parallel"},
      paramLabel = "N",
      description = "Threads hashing, compressing and writing chunks (default: 2 per core).")
  Integer threads;

  @Mixin KeyOptions key;

  @Option(
      names = "--crypt-mode",
      paramLabel = "MODE",
      description = {
        "encrypt (the default with --keyfile), sign-only (chunks stored plain, the "
            + "manifest signed with the key) or none (the default without a key)."
      })
  String cryptMode;

  @Option(
      names = "--owner",
      paramLabel = "AUTHID",
      defaultValue = Backup.DEFAULT_OWNER,
      description = {
        "Owner written into a new backup group, as Proxmox Backup Server records it "
            + "(default: ${DEFAULT-VALUE}). An existing group keeps its owner."
      })
  String owner;

  @Option(
      names = "--as-datastore-owner",
      description = {
        "Write into a local datastore that a Proxmox Backup Server manages: as its "
            + "owner (files get the datastore's user and group, and PBS's modes) and holding PBS's "
            + "chunk-store lock, so that its garbage collection cannot run meanwhile. Needs root."
      })
  boolean asDatastoreOwner;

  @Option(
      names = "--pbs-layout",
      description = {
        "Make every .chunks/XXXX directory of a local datastore now, as Proxmox Backup "
            + "Server does, so that a PBS can adopt the datastore (65536 directories; 256 MiB on ext4)."
      })
  boolean pbsLayout;

  /** Where S3 credentials are read from: the environment with the launcher's secrets. */
  private final java.util.Map<String, String> env;

  BackupCommand(java.util.Map<String, String> env) {
    this.env = env;
  }

  @Parameters(
      arity = "1..*",
      paramLabel = "[NAME.img:]PATH",
      description = "Files or block devices; archive name defaults to the file name plus .img.")
  List<String> sources;

  @Override
  public Integer call() throws Exception {
    String[] group = id.split("/", -1);
    if (group.length != 2) {
      throw new IllegalArgumentException("--id must be TYPE/ID, e.g. vm/100: " + id);
    }
    // validate type and id the same way snapshot names are validated
    SnapshotPath.parse(group[0] + "/" + group[1] + "/2000-01-01T00:00:00Z");
    List<Backup.Source> src = sources.stream().map(Backup.Source::parse).toList();
    CryptConfig k = key.load();
    Manifest.CryptMode mode;
    try {
      mode =
          cryptMode != null
              ? Manifest.CryptMode.parse(cryptMode)
              : k != null ? Manifest.CryptMode.ENCRYPT : Manifest.CryptMode.NONE;
    } catch (FormatException e) {
      throw new IllegalArgumentException(
          "--crypt-mode must be encrypt, sign-only or none, not '" + cryptMode + "'");
    }
    Backup.Options options = new Backup.Options(k, mode, owner);
    int n = threads != null ? threads : 2 * Runtime.getRuntime().availableProcessors();
    try (WritableStore s =
        Stores.access(Stores.Options.defaults(n).withS3(s3.toOptions()).withEnv(env))
            .openWritable(store, new WriteOptions(asDatastoreOwner, pbsLayout))) {
      Backup.Result r = new Backup(s, group[0], group[1], options, n).run(src);
      System.err.printf(
          "backed up %d image(s), %s in %d chunks; %d new chunks written (%s)%n",
          src.size(),
          Units.bytes(r.bytes()),
          r.chunks(),
          r.written(),
          Units.bytes(r.writtenBytes()));
      System.out.println(r.snapshot());
    }
    return 0;
  }
}
