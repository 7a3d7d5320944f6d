package dev.thaw.files;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * ext2/3/4 through e2fsprogs' {@code debugfs} opened read-only in catastrophic mode ({@code -c}: no
 * bitmaps read), so that a listing or copy reads only the superblock, group descriptors, the inodes
 * and directory blocks on the path, and the file's own blocks. {@code rdump} keeps modes and times,
 * sets ownership when run as root, and makes symlinks.
 */
final class Debugfs implements FileSystemReader {
  /** {@code ls -p}: /inode/mode/uid/gid/name/size/ (a name cannot hold a slash). */
  private static final Pattern LS_P =
      Pattern.compile("^/(\\d+)/(\\d+)/(\\d+)/(\\d+)/(.*)/(\\d*)/$");

  private static final Pattern STAT_TYPE = Pattern.compile("Type: (\\S+)");

  private final Tool tool = new Tool("debugfs", "e2fsprogs", 3600);
  private final Path volume;
  private final String type;

  Debugfs(Path volume, String type) {
    this.volume = volume;
    this.type = type;
  }

  @Override
  public String type() {
    return type;
  }

  private Tool.Result request(String request) throws IOException {
    return tool.run(List.of("-c", "-R", request, volume.toString()));
  }

  /**
   * debugfs reads its requests like a shell: a path goes in double quotes, which it cannot escape.
   */
  private static String quoted(FsPath p) throws FilesException {
    String s = p.absolute();
    if (s.indexOf('"') >= 0 || s.indexOf('\n') >= 0) {
      throw new FilesException("debugfs cannot name a path with a double quote or a newline: " + s);
    }
    return "\"" + s + "\"";
  }

  /** The inode type debugfs's {@code stat} reports ("regular", "directory", "symlink", ...). */
  private String kind(FsPath p) throws IOException {
    Tool.Result r = request("stat " + quoted(p));
    Matcher m = STAT_TYPE.matcher(r.out());
    if (m.find()) {
      return m.group(1);
    }
    if (r.err().contains("File not found")) {
      throw new FilesException("no such file or directory in " + volume + ": " + p.absolute());
    }
    throw new IOException(
        "debugfs cannot read " + p.absolute() + " in " + volume + ": " + lastLine(r.err()));
  }

  @Override
  public List<Entry> list(String path) throws IOException {
    FsPath p = FsPath.parse(path);
    boolean dir = kind(p).equals("directory");
    // ls of a non-directory fails: list its parent and keep its entry
    FsPath listed = dir ? p : new FsPath(p.parts().subList(0, p.parts().size() - 1));
    Tool.Result r = request("ls -p " + quoted(listed));
    List<Entry> out = new ArrayList<>();
    for (String line : r.out().split("\n")) {
      Matcher m = LS_P.matcher(line);
      if (!m.matches()) {
        continue;
      }
      String name = m.group(5);
      if (name.equals(".") || name.equals("..") || (!dir && !name.equals(p.name()))) {
        continue;
      }
      int mode = Integer.parseInt(m.group(2), 8);
      out.add(
          new Entry(
              name,
              kindOf(mode),
              mode & 07777,
              Long.parseLong(m.group(3)),
              Long.parseLong(m.group(4)),
              m.group(6).isEmpty() ? 0 : Long.parseLong(m.group(6)),
              null));
    }
    out.sort(Comparator.comparing(Entry::name));
    return out;
  }

  private static Entry.Kind kindOf(int mode) {
    return switch (mode & 0170000) {
      case 0100000 -> Entry.Kind.FILE;
      case 0040000 -> Entry.Kind.DIRECTORY;
      case 0120000 -> Entry.Kind.SYMLINK;
      default -> Entry.Kind.OTHER;
    };
  }

  @Override
  public Path copy(String path, Path destination) throws IOException {
    FsPath p = FsPath.parse(path);
    String kind = kind(p);
    if (!kind.equals("regular") && !kind.equals("directory") && !kind.equals("symlink")) {
      throw new FilesException(
          "not a regular file, directory or symlink: " + p.absolute() + " (" + kind + ")");
    }
    String name = p.root() ? volume.getFileName().toString() + ".root" : p.name();
    Path target = Copier.target(destination, name);
    boolean root = Copier.isRoot();
    return Copier.copy(
        target,
        staging -> {
          Path out = staging;
          String source = quoted(p);
          if (p.root()) { // rdump of / makes no directory of its own
            out = staging.resolve(name);
            java.nio.file.Files.createDirectory(out);
          }
          if (staging.toString().indexOf('"') >= 0) {
            throw new FilesException(
                "debugfs cannot write below a path with a double quote: " + staging);
          }
          Tool.Result r = request("rdump " + source + " \"" + out + "\"");
          List<String> errors = new ArrayList<>();
          for (String line : r.err().split("\n")) {
            if (line.isBlank()
                || line.startsWith("debugfs ")
                || (!root && line.contains("Operation not permitted while changing ownership"))) {
              continue;
            }
            errors.add(line);
          }
          if (!errors.isEmpty()) {
            throw new IOException(
                "debugfs could not copy "
                    + p.absolute()
                    + " out of "
                    + volume
                    + ": "
                    + String.join("; ", errors.subList(0, Math.min(3, errors.size()))));
          }
          return p.root() ? out : staging.resolve(p.name());
        });
  }

  static String lastLine(String s) {
    String[] l = s.strip().split("\n");
    return l[l.length - 1];
  }
}
