package dev.thaw.cli;

import dev.thaw.fuse.Mounter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
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
        ProcessHandle.allProcesses()
            .filter(h -> h.info().arguments().map(a -> isServerOf(a, mp)).orElse(false))
            .toList();
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
      h.onExit().completeOnTimeout(h, 15, java.util.concurrent.TimeUnit.SECONDS).join();
    }
    System.err.println("thaw: unmounted " + mp);
    return 0;
  }

  private static boolean isServerOf(String[] args, Path mp) {
    boolean mount = false;
    boolean fg = false;
    for (String a : args) {
      mount |= a.equals("mount");
      fg |= a.equals("--foreground");
    }
    return mount && fg && args.length > 0 && args[args.length - 1].equals(mp.toString());
  }
}
