package dev.thaw.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class UnmountCommandTest {
  private static final String JAVA = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java";
  private static final Path MP = Path.of("/tmp/t/mnt");
  private static final Path CWD = Path.of("/tmp/t");

  private static int asked;

  private static boolean serves(String command, Path cwd, String... args) {
    asked = 0;
    return UnmountCommand.isServerOf(
        command,
        args,
        () -> {
          asked++;
          return cwd;
        },
        MP);
  }

  @Test
  void aMountStartedByTheLauncherIsFound() {
    // the launcher's detached mount runs with --ready-fd and no --foreground
    assertTrue(
        serves(
            JAVA,
            CWD,
            "-Xss1m",
            "-jar",
            "/opt/thaw.jar",
            "mount",
            "--ready-fd",
            "3",
            "--store",
            "/tmp/t/ds",
            "vm/100/2026-01-01T00:00:00Z",
            "/tmp/t/mnt"));
    assertTrue(
        serves(
            JAVA,
            CWD,
            "-jar",
            "/opt/thaw.jar",
            "mount",
            "--foreground",
            "--store",
            "/tmp/t/ds",
            "snap",
            "/tmp/t/mnt/"));
  }

  @Test
  void aRelativeMountPointIsResolvedInTheServersWorkingDirectory() {
    assertTrue(serves(JAVA, CWD, "-jar", "thaw.jar", "mount", "--store", "ds", "snap", "mnt"));
    assertEquals(1, asked);
    assertTrue(serves(JAVA, Path.of("/tmp/t/ds"), "-jar", "thaw.jar", "mount", "s", "../mnt"));
    assertFalse(serves(JAVA, Path.of("/home/u"), "-jar", "thaw.jar", "mount", "s", "mnt"));
    assertFalse(serves(JAVA, null, "-jar", "thaw.jar", "mount", "s", "mnt"));
  }

  @Test
  void theWorkingDirectoryIsReadOnlyForARelativeArgumentOfAMount() {
    assertTrue(serves(JAVA, CWD, "-jar", "/opt/t.jar", "mount", "--store", "/d", "/tmp/t/mnt"));
    assertEquals(0, asked);
    assertFalse(serves(JAVA, CWD, "-jar", "t.jar", "ls", "--store", "ds", "snap"));
    assertEquals(0, asked);
    assertFalse(serves("/usr/bin/bash", CWD, "/usr/bin/thaw", "mount", "s", "mnt"));
    assertEquals(0, asked);
  }

  @Test
  void optionsMayFollowTheMountPoint() {
    assertTrue(
        serves(
            JAVA,
            CWD,
            "-jar",
            "t.jar",
            "mount",
            "--store",
            "d",
            "s",
            "/tmp/t/mnt",
            "--parallel",
            "8"));
  }

  @Test
  void otherProcessesAreNotServers() {
    // the launcher script itself, and the unmount naming the same mount point
    assertFalse(serves("/usr/bin/bash", CWD, "/usr/bin/thaw", "mount", "s", "/tmp/t/mnt"));
    assertFalse(serves(JAVA, CWD, "-jar", "t.jar", "unmount", "/tmp/t/mnt"));
    // another mount, and a mount whose mount point is a different directory
    assertFalse(serves(JAVA, CWD, "-jar", "t.jar", "mount", "s", "/tmp/t/mnt2"));
    assertFalse(serves(JAVA, CWD, "-jar", "t.jar", "mount", "s", "/tmp/t"));
    // the mount point named before the subcommand does not count
    assertFalse(serves(JAVA, CWD, "-Dx=/tmp/t/mnt", "/tmp/t/mnt", "-jar", "t.jar", "ls", "s"));
    assertFalse(serves(null, CWD, "-jar", "t.jar", "mount", "s", "/tmp/t/mnt"));
  }
}
