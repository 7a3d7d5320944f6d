package dev.thaw.files;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The readers on real filesystems made here without root: ext4 by {@code mkfs.ext4 -d}, FAT by
 * {@code mkfs.vfat} and mtools. Skipped where those tools or the readers are missing.
 */
class FileSystemReaderTest {
  @TempDir static Path dir;
  static Path tree;
  static final Instant DATED = Instant.parse("2021-02-03T04:05:06Z");

  static boolean has(String program) {
    return new Tool(program, program, 10).find() != null;
  }

  static void run(String... cmd) throws IOException, InterruptedException {
    Process p =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(dir.resolve("cmd.log").toFile())
            .start();
    assertEquals(
        0, p.waitFor(), String.join(" ", cmd) + ": " + Files.readString(dir.resolve("cmd.log")));
  }

  @BeforeAll
  static void tree() throws IOException {
    tree = dir.resolve("tree");
    Files.createDirectories(tree.resolve("sub/deeper"));
    Files.writeString(tree.resolve("hello.txt"), "hello from the backup\n");
    byte[] random = new byte[300_000];
    new Random(7).nextBytes(random);
    Files.write(tree.resolve("sub/random.bin"), random);
    Files.writeString(tree.resolve("sub/deeper/deep.txt"), "deep\n");
    Files.writeString(tree.resolve("run.sh"), "#!/bin/sh\n");
    Files.setPosixFilePermissions(
        tree.resolve("run.sh"), PosixFilePermissions.fromString("rwxr-x---"));
    Files.writeString(tree.resolve("sub/dated.txt"), "dated\n");
    Files.setLastModifiedTime(tree.resolve("sub/dated.txt"), FileTime.from(DATED));
  }

  static Path ext4() throws Exception {
    assumeTrue(has("mkfs.ext4") && has("debugfs") && has("mkfifo"), "mkfs.ext4, debugfs, mkfifo");
    Path img = dir.resolve("ext4.img");
    if (!Files.exists(img)) {
      Path t = dir.resolve("ext4-tree");
      run("cp", "-a", tree.toString(), t.toString());
      Files.createSymbolicLink(t.resolve("link"), Path.of("sub/deeper/deep.txt"));
      run("mkfifo", t.resolve("fifo").toString());
      run("mkfs.ext4", "-q", "-F", "-d", t.toString(), img.toString(), "8M");
    }
    return img;
  }

  static Path fat() throws Exception {
    assumeTrue(has("mkfs.vfat") && has("mcopy") && has("7zz"), "mkfs.vfat, mcopy, 7zz");
    Path img = dir.resolve("fat.img");
    if (!Files.exists(img)) {
      run("truncate", "-s", "8M", img.toString());
      run("mkfs.vfat", img.toString());
      try (Stream<Path> top = Files.list(tree)) {
        for (Path p : top.toList()) {
          run(
              "env",
              "MTOOLS_SKIP_CHECK=1",
              "mcopy",
              "-s",
              "-p",
              "-m",
              "-i",
              img.toString(),
              p.toString(),
              "::/");
        }
      }
    }
    return img;
  }

  static List<String> names(List<Entry> l) {
    return l.stream().map(e -> e.name() + (e.kind() == Entry.Kind.DIRECTORY ? "/" : "")).toList();
  }

  static void assertSameTree(Path expected, Path actual, boolean modes) throws IOException {
    try (Stream<Path> all = Files.walk(expected)) {
      for (Path e : all.toList()) {
        Path a = actual.resolve(expected.relativize(e).toString());
        assertTrue(Files.exists(a, LinkOption.NOFOLLOW_LINKS), "missing " + a);
        if (Files.isRegularFile(e)) {
          assertArrayEquals(Files.readAllBytes(e), Files.readAllBytes(a), a.toString());
          assertEquals(
              Files.getLastModifiedTime(e).toInstant().getEpochSecond() / 2,
              Files.getLastModifiedTime(a).toInstant().getEpochSecond() / 2,
              "mtime of " + a); // FAT: 2 s
          if (modes) {
            assertEquals(
                Files.getPosixFilePermissions(e), Files.getPosixFilePermissions(a), "mode of " + a);
          }
        }
      }
    }
  }

  @Test
  void ext4ListsAndCopiesFilesTreesAndSymlinks() throws Exception {
    FileSystemReader r = FileSystemReader.open(ext4());
    assertEquals("ext4", r.type());
    assertEquals(
        List.of("fifo", "hello.txt", "link", "lost+found/", "run.sh", "sub/"), names(r.list("/")));
    assertEquals(List.of("dated.txt", "deeper/", "random.bin"), names(r.list("sub/./deeper/..")));
    Entry run = r.list("/run.sh").get(0);
    assertEquals(0750, run.mode());
    assertEquals(Entry.Kind.SYMLINK, r.list("/").get(2).kind());

    Path out = Files.createDirectories(dir.resolve("out-ext4"));
    Path sub = r.copy("/sub", out);
    assertEquals(out.resolve("sub"), sub);
    assertSameTree(tree.resolve("sub"), sub, true);
    assertEquals(DATED, Files.getLastModifiedTime(sub.resolve("dated.txt")).toInstant());
    Path exe = r.copy("run.sh", out.resolve("renamed.sh"));
    assertEquals(PosixFilePermissions.fromString("rwxr-x---"), Files.getPosixFilePermissions(exe));
    Path link = r.copy("/link", out);
    assertTrue(Files.isSymbolicLink(link));
    assertEquals(Path.of("sub/deeper/deep.txt"), Files.readSymbolicLink(link));
    Path all = r.copy("/", out);
    assertSameTree(tree, all, true);
    assertFalse(Files.exists(all.resolve("fifo")), "a fifo is not copied");
    try (Stream<Path> left = Files.list(out)) {
      assertTrue(
          left.noneMatch(p -> p.getFileName().toString().startsWith(".thaw-copy-")),
          "staging left behind");
    }
  }

  @Test
  void ext4Errors() throws Exception {
    FileSystemReader r = FileSystemReader.open(ext4());
    Path out = Files.createDirectories(dir.resolve("out-ext4-errors"));
    assertMessage("no such file or directory in", () -> r.list("/nope"));
    assertMessage("no such file or directory in", () -> r.copy("/sub/nope.txt", out));
    assertMessage(
        "path escapes the filesystem's root: ../../etc/passwd",
        () -> r.copy("../../etc/passwd", out));
    assertMessage("path escapes the filesystem's root", () -> r.list("/sub/../.."));
    assertMessage("not a regular file, directory or symlink: /fifo", () -> r.copy("/fifo", out));
    r.copy("/hello.txt", out);
    assertMessage("already exists, not overwritten", () -> r.copy("/hello.txt", out));
    assertMessage("no such directory", () -> r.copy("/hello.txt", out.resolve("no/such/dir")));
  }

  @Test
  void fatListsAndCopiesWithTimes() throws Exception {
    FileSystemReader r = FileSystemReader.open(fat());
    assertEquals("vfat", r.type());
    assertEquals(List.of("hello.txt", "run.sh", "sub/"), names(r.list("/")));
    assertEquals(List.of("dated.txt", "deeper/", "random.bin"), names(r.list("/sub")));
    assertEquals(DATED, r.list("/sub/dated.txt").get(0).modified());
    Path out = Files.createDirectories(dir.resolve("out-fat"));
    assertSameTree(tree.resolve("sub"), r.copy("/sub", out), false);
    assertSameTree(
        tree.resolve("sub/deeper"),
        r.copy("sub/deeper", out),
        false); // a name found twice in the tree
    assertArrayEquals(
        Files.readAllBytes(tree.resolve("hello.txt")),
        Files.readAllBytes(r.copy("/hello.txt", out.resolve("h.txt"))));
    assertMessage("no such file or directory in", () -> r.copy("/sub/nope", out));
    assertMessage("path escapes the filesystem's root", () -> r.copy("/../hello.txt", out));
  }

  @Test
  void unreadableFilesystemsNameTheRootRecipe() throws Exception {
    Path img = dir.resolve("xfs-like.img");
    byte[] b = new byte[8192];
    b[0] = 'X';
    b[1] = 'F';
    b[2] = 'S';
    b[3] = 'B';
    Files.write(img, b);
    assertMessage(
        "holds xfs, which thaw cannot read without root; as root: mkdir -p /mnt/restore && mount -o "
            + "ro,loop,norecovery "
            + img,
        () -> FileSystemReader.open(img));
    Files.write(img, new byte[8192]);
    assertMessage("holds no filesystem thaw recognises", () -> FileSystemReader.open(img));
  }

  static void assertMessage(String part, org.junit.jupiter.api.function.Executable e) {
    FilesException x = assertThrows(FilesException.class, e);
    assertTrue(x.getMessage().contains(part), x.getMessage() + " lacks: " + part);
  }
}
