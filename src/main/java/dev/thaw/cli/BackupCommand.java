package dev.thaw.cli;

import dev.thaw.backup.Backup;
import dev.thaw.crypto.CryptConfig;
import dev.thaw.store.SnapshotPath;
import dev.thaw.store.Stores;
import dev.thaw.store.WritableStore;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "backup", mixinStandardHelpOptions = true,
    description = {"Back up files or block devices as images into a datastore.",
        "Prints the snapshot name (TYPE/ID/TIME) as the last line."})
final class BackupCommand implements Callable<Integer> {
  @Option(names = "--store", required = true, paramLabel = "DS",
      description = "Datastore: a directory (or file:///path; created if missing) or s3://BUCKET/PREFIX.")
  String store;

  @Mixin
  S3Flags s3;

  @Option(names = "--id", required = true, paramLabel = "TYPE/ID",
      description = "Backup group, e.g. vm/100 (TYPE is vm, ct or host).")
  String id;

  @Option(names = {"--threads", "--parallel"}, paramLabel = "N",
      description = "Threads hashing, compressing and writing chunks (default: 2 per core).")
  Integer threads;

  @Mixin
  KeyOptions key;

  @Parameters(arity = "1..*", paramLabel = "[NAME.img:]PATH",
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
    int n = threads != null ? threads : 2 * Runtime.getRuntime().availableProcessors();
    try (WritableStore s = Stores.access(Stores.Options.defaults(n).withS3(s3.toOptions())).openWritable(store)) {
      Backup.Result r = new Backup(s, group[0], group[1], k, n).run(src);
      System.err.printf("backed up %d image(s), %s in %d chunks; %d new chunks written (%s)%n",
          src.size(), Units.bytes(r.bytes()), r.chunks(), r.written(), Units.bytes(r.writtenBytes()));
      System.out.println(r.snapshot());
    }
    return 0;
  }
}
