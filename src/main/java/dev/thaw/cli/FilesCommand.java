package dev.thaw.cli;

import dev.thaw.files.Entry;
import dev.thaw.files.FileSystemReader;
import java.nio.file.Path;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/**
 * {@code thaw files ls|cp VOLUME-FILE PATH [DEST]}: lists or copies out of the filesystem in a
 * partition or logical volume file, as any user, without mounting it. Hidden until mounts show
 * volumes as files and the command takes a snapshot and volume name.
 */
@Command(name = "files", hidden = true, mixinStandardHelpOptions = true,
    description = "List or copy files out of the filesystem in a partition or volume file, without root.",
    subcommands = {FilesCommand.Ls.class, FilesCommand.Cp.class})
final class FilesCommand {
  private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm").withZone(ZoneOffset.UTC);

  @Command(name = "ls", mixinStandardHelpOptions = true, description = "List a directory (or one file).")
  static final class Ls implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "VOLUME-FILE")
    Path volume;

    @Parameters(index = "1", paramLabel = "PATH", defaultValue = "/")
    String path;

    @Override
    public Integer call() throws Exception {
      FileSystemReader r = FileSystemReader.open(volume);
      for (Entry e : r.list(path)) {
        System.out.printf("%s %5s %5s %12d %16s %s%n", mode(e), e.uid() < 0 ? "-" : Long.toString(e.uid()),
            e.gid() < 0 ? "-" : Long.toString(e.gid()), e.size(), e.modified() == null ? "-" : TIME.format(e.modified()),
            e.name());
      }
      return 0;
    }
  }

  @Command(name = "cp", mixinStandardHelpOptions = true,
      description = {"Copy a file, symlink or directory tree to DEST (into it when it is a directory).",
          "Modes and times are kept where the filesystem has them, ownership when run as root."})
  static final class Cp implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "VOLUME-FILE")
    Path volume;

    @Parameters(index = "1", paramLabel = "PATH")
    String path;

    @Parameters(index = "2", paramLabel = "DEST")
    Path dest;

    @Override
    public Integer call() throws Exception {
      FileSystemReader r = FileSystemReader.open(volume);
      Path made = r.copy(path, dest);
      System.err.println("copied " + path + " to " + made);
      return 0;
    }
  }

  static String mode(Entry e) {
    char t = switch (e.kind()) {
      case DIRECTORY -> 'd';
      case SYMLINK -> 'l';
      case OTHER -> '?';
      default -> '-';
    };
    if (e.mode() < 0) {
      return t + "?????????";
    }
    StringBuilder s = new StringBuilder().append(t);
    String rwx = "rwxrwxrwx";
    for (int i = 0; i < 9; i++) {
      s.append((e.mode() & (0400 >> i)) != 0 ? rwx.charAt(i) : '-');
    }
    return s.toString();
  }
}
