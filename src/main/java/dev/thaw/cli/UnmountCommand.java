package dev.thaw.cli;

import dev.thaw.fuse.Mounter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

@Command(
    name = "unmount",
    aliases = "umount",
    mixinStandardHelpOptions = true,
    description = "Unmount a thaw mount and wait until its process has ended.")
final class UnmountCommand implements Callable<Integer> {
  @Parameters(paramLabel = "MOUNTPOINT")
  Path mountpoint;

  @Override
  public Integer call() throws Exception {
    Path mp = mountpoint.toAbsolutePath().normalize();
    if (!Mounter.isMounted(mp)) {
      throw new IllegalArgumentException(mp + " is not a thaw mount");
    }
    // the serving process, found while it is surely running: once the kernel lets go it exits,
    // and an exiting process's command line reads empty before the process is gone
    List<ProcessHandle> servers =
        ProcessHandle.allProcesses().filter(h -> isServer(h, mp)).toList();
    // a reader may be closing its files just now: a busy mount point gets two seconds of tries
    for (int attempt = 1; ; attempt++) {
      Process p =
          new ProcessBuilder("fusermount", "-u", mp.toString()).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
      if (p.waitFor() == 0) {
        break;
      }
      if (!out.contains("busy")) {
        throw new IOException("cannot unmount " + mp + ": " + out);
      }
      if (attempt == 10) {
        throw new IOException(
            "cannot unmount "
                + mp
                + ": it is busy; close the files open below it (see: fuser -vm "
                + mp
                + ")");
      }
      Thread.sleep(200);
    }
    long deadline = System.nanoTime() + 15_000_000_000L;
    while (Mounter.isMounted(mp) && System.nanoTime() < deadline) {
      Thread.sleep(50);
    }
    for (ProcessHandle h : servers) {
      h.onExit().completeOnTimeout(h, 15, TimeUnit.SECONDS).join();
      if (h.isAlive()) {
        System.err.println(
            "thaw: warning: the mount process " + h.pid() + " has not ended 15 s after unmount");
      }
    }
    System.err.println("thaw: unmounted " + mp);
    return 0;
  }

  /**
   * Whether a process serves the mount at {@code mp}: a JVM running thaw's {@code mount} whose
   * arguments name {@code mp}, as given or relative to that process's working directory. A mount
   * started by the launcher runs with {@code --ready-fd}, one started in the foreground with {@code
   * --foreground}; both match, and options may follow the mount point.
   *
   * @param cwd that process's working directory (null when it cannot be read), asked for at most
   *     once and only for a relative argument of a mount
   */
  static boolean isServerOf(String command, String[] args, Supplier<Path> cwd, Path mp) {
    if (command == null || !Path.of(command).getFileName().toString().equals("java")) {
      return false;
    }
    int sub = -1;
    for (int i = 0; i < args.length && sub < 0; i++) {
      if (args[i].equals("mount")) {
        sub = i;
      }
    }
    if (sub < 0) {
      return false;
    }
    Path dir = null;
    boolean asked = false;
    for (int i = sub + 1; i < args.length; i++) {
      if (args[i].startsWith("-") || args[i].isEmpty()) {
        continue;
      }
      try {
        Path p = Path.of(args[i]);
        if (!p.isAbsolute()) {
          if (!asked) {
            dir = cwd.get();
            asked = true;
          }
          if (dir == null) {
            continue;
          }
          p = dir.resolve(p);
        }
        if (p.normalize().equals(mp)) {
          return true;
        }
      } catch (InvalidPathException e) {
        // not a path
      }
    }
    return false;
  }

  private static boolean isServer(ProcessHandle h, Path mp) {
    if (h.pid() == ProcessHandle.current().pid()) {
      return false;
    }
    ProcessHandle.Info info = h.info();
    String[] args = info.arguments().orElse(null);
    if (args == null) {
      return false;
    }
    return isServerOf(info.command().orElse(null), args, () -> cwdOf(h), mp);
  }

  private static Path cwdOf(ProcessHandle h) {
    try {
      return Files.readSymbolicLink(Path.of("/proc", Long.toString(h.pid()), "cwd"));
    } catch (IOException | UnsupportedOperationException e) {
      return null; // gone, or not ours to read: only an absolute mount point can match
    }
  }
}
