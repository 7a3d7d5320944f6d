package dev.thaw.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.thaw.crypto.CryptConfig;
import dev.thaw.format.Manifest;
import dev.thaw.image.Snapshot;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.SnapshotPath;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "ls",
    mixinStandardHelpOptions = true,
    description = "List the snapshots of a datastore, or the archives of one snapshot.")
final class LsCommand implements Callable<Integer> {
  enum Output {
    text,
    json
  }

  @Mixin StoreOptions storeOptions;

  @Option(
      names = "--output",
      paramLabel = "FORMAT",
      defaultValue = "text",
      description = "text or json (default: ${DEFAULT-VALUE}).")
  Output output;

  @Mixin KeyOptions key;

  @Parameters(arity = "0..1", paramLabel = "SNAPSHOT", description = "TYPE/ID/TIME")
  String snapshot;

  private static final ObjectMapper JSON = new ObjectMapper();

  @Override
  public Integer call() throws Exception {
    try (ChunkStore s = storeOptions.open()) {
      if (snapshot == null) {
        listSnapshots(s);
      } else {
        listArchives(s, SnapshotPath.parse(snapshot));
      }
    }
    return 0;
  }

  private void listSnapshots(ChunkStore s) throws Exception {
    List<SnapshotPath> all = s.listSnapshots();
    if (output == Output.json) {
      ArrayNode arr = JSON.createArrayNode();
      for (SnapshotPath p : all) {
        ObjectNode o = arr.addObject();
        o.put("snapshot", p.toString());
        o.put("type", p.type());
        o.put("id", p.id());
        o.put("time", p.timeString());
        o.put("epoch", p.time().getEpochSecond());
        if (!p.namespace().isEmpty()) {
          o.putPOJO("namespace", p.namespace());
        }
      }
      System.out.println(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(arr));
    } else {
      all.forEach(System.out::println);
      if (all.isEmpty()) {
        System.err.println("no snapshots in " + s.describe());
      }
    }
  }

  private void listArchives(ChunkStore s, SnapshotPath p) throws Exception {
    CryptConfig k = key.load();
    Manifest m = Snapshot.readManifest(s, p, k);
    if (output == Output.json) {
      ObjectNode o = JSON.createObjectNode();
      o.put("snapshot", p.toString());
      o.put("encrypted", m.encrypted());
      o.put("signed", m.signed());
      m.keyFingerprint().ifPresent(fp -> o.put("key-fingerprint", fp));
      o.put("signature-checked", m.signatureChecked());
      ArrayNode arr = o.putArray("archives");
      for (Manifest.FileInfo f : m.files()) {
        if (!f.filename().endsWith(Snapshot.FIXED_INDEX_SUFFIX)) {
          continue;
        }
        ObjectNode a = arr.addObject();
        a.put(
            "name",
            f.filename()
                .substring(0, f.filename().length() - Snapshot.FIXED_INDEX_SUFFIX.length()));
        a.put("file", f.filename());
        a.put("size", f.size());
        a.put("crypt-mode", f.cryptMode().json());
      }
      ArrayNode files = o.putArray("files");
      for (Manifest.FileInfo f : m.files()) {
        files
            .addObject()
            .put("filename", f.filename())
            .put("size", f.size())
            .put("crypt-mode", f.cryptMode().json());
      }
      System.out.println(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o));
    } else {
      for (Manifest.FileInfo f : m.files()) {
        String name =
            f.filename().endsWith(Snapshot.FIXED_INDEX_SUFFIX)
                ? f.filename()
                    .substring(0, f.filename().length() - Snapshot.FIXED_INDEX_SUFFIX.length())
                : f.filename();
        System.out.printf(
            "%-28s %12s %16d bytes  %s%n",
            name, Units.bytes(f.size()), f.size(), f.cryptMode().json());
      }
    }
  }
}
