package dev.thaw.files;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * NTFS and FAT through 7-Zip's {@code 7zz} (Debian package {@code 7zip}): {@code l -slt} lists the
 * whole filesystem (7-Zip reads NTFS's MFT or FAT's tables and directories to build it), {@code x
 * -snl} extracts a file or tree with its times, making symlinks as symlinks. System files ({@code
 * [SYSTEM]}, {@code $MFT}...) and alternate data streams are left out.
 */
final class SevenZip implements FileSystemReader {
  private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss");

  private final Tool tool = new Tool("7zz", "7zip", 3600);
  private final Path volume;
  private final String type;
  private Map<String, Entry> index; // relative path -> entry, read once

  SevenZip(Path volume, String type) {
    this.volume = volume;
    this.type = type;
  }

  @Override
  public String type() {
    return type;
  }

  /** Every entry of the filesystem, by relative path ("" is the root). */
  private Map<String, Entry> index() throws IOException {
    if (index != null) {
      return index;
    }
    Tool.Result r =
        tool.run(
            List.of("l", "-slt", "-t" + (type.equals("vfat") ? "FAT" : "NTFS"), volume.toString()));
    if (r.exit() != 0) {
      throw new IOException(
          "7zz cannot list " + volume + ": " + Debugfs.lastLine(r.err() + "\n" + r.out()));
    }
    Map<String, Entry> all = new HashMap<>();
    all.put("", new Entry("/", Entry.Kind.DIRECTORY, -1, -1, -1, 0, null));
    String body = r.out();
    int start = body.indexOf("\n----------\n");
    for (String block : body.substring(start < 0 ? body.length() : start + 12).split("\n\n")) {
      Map<String, String> f = new HashMap<>();
      for (String line : block.split("\n")) {
        int eq = line.indexOf(" = ");
        if (eq > 0) {
          f.putIfAbsent(line.substring(0, eq), line.substring(eq + 3));
        }
      }
      String path = f.get("Path");
      if (path == null
          || path.startsWith("[SYSTEM]")
          || path.startsWith("[DELETED]")
          || path.contains(":")
          || path.startsWith("$")) {
        continue;
      }
      String attrs = f.getOrDefault("Attributes", "");
      boolean dir = "+".equals(f.get("Folder")) || attrs.startsWith("D");
      String link = f.get("Link");
      Entry.Kind kind =
          dir
              ? Entry.Kind.DIRECTORY
              : link != null && !link.isEmpty() ? Entry.Kind.SYMLINK : Entry.Kind.FILE;
      Instant mtime = null;
      String m = f.get("Modified");
      if (m != null && m.length() >= 19) {
        mtime = LocalDateTime.parse(m.substring(0, 19), TIME).toInstant(ZoneOffset.UTC);
      }
      long size = parseLong(f.get("Size"));
      String name = path.substring(path.lastIndexOf('/') + 1);
      all.put(path, new Entry(name, kind, -1, -1, -1, dir ? 0 : size, mtime));
    }
    index = all;
    return all;
  }

  private static long parseLong(String s) {
    try {
      return s == null || s.isEmpty() ? 0 : Long.parseLong(s);
    } catch (NumberFormatException e) {
      return 0;
    }
  }

  private Entry entry(FsPath p) throws IOException {
    Entry e = index().get(p.relative());
    if (e == null) {
      throw new FilesException("no such file or directory in " + volume + ": " + p.absolute());
    }
    return e;
  }

  @Override
  public List<Entry> list(String path) throws IOException {
    FsPath p = FsPath.parse(path);
    Entry e = entry(p);
    if (e.kind() != Entry.Kind.DIRECTORY) {
      return List.of(e);
    }
    String prefix = p.root() ? "" : p.relative() + "/";
    List<Entry> out = new ArrayList<>();
    for (Map.Entry<String, Entry> x : index().entrySet()) {
      String k = x.getKey();
      if (!k.isEmpty() && k.startsWith(prefix) && k.indexOf('/', prefix.length()) < 0) {
        out.add(x.getValue());
      }
    }
    out.sort(Comparator.comparing(Entry::name));
    return out;
  }

  @Override
  public Path copy(String path, Path destination) throws IOException {
    FsPath p = FsPath.parse(path);
    Entry e = entry(p);
    if (e.kind() == Entry.Kind.OTHER) {
      throw new FilesException("not a regular file, directory or symlink: " + p.absolute());
    }
    String name = p.root() ? volume.getFileName().toString() + ".root" : p.name();
    Path target = Copier.target(destination, name);
    return Copier.copy(
        target,
        staging -> {
          Path out = staging.resolve("x");
          List<String> args =
              new ArrayList<>(
                  List.of(
                      "x",
                      "-snl",
                      "-y",
                      "-bd",
                      "-t" + (type.equals("vfat") ? "FAT" : "NTFS"),
                      "-o" + out,
                      volume.toString()));
          args.add(p.root() ? "-x![SYSTEM]" : "-i!" + p.relative());
          Tool.Result r = tool.run(args);
          if (r.exit() != 0) {
            throw new IOException(
                "7zz could not copy "
                    + p.absolute()
                    + " out of "
                    + volume
                    + ": "
                    + Debugfs.lastLine(r.err() + "\n" + r.out()));
          }
          if (p.root()) {
            Files.createDirectories(out);
            return out;
          }
          return out.resolve(p.relative());
        });
  }
}
