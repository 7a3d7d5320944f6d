package dev.thaw.files;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * The copy discipline shared by the readers: a reader (in-process or a tool) extracts into a fresh
 * staging directory beside the target; what it made is checked (regular files, directories and
 * symlinks only, nothing outside the staging directory) and renamed into place; the staging
 * directory goes in every case.
 */
final class Copier {
  /** Extracts {@code path} into a directory. */
  @FunctionalInterface
  interface Extract {
    /**
     * Writes the entry as {@code staging/<relative>}, where relative is what the tool makes of its
     * path.
     */
    Path into(Path staging) throws IOException;
  }

  private Copier() {}

  /** Where a copy of an entry named {@code name} goes for {@code destination}. */
  static Path target(Path destination, String name) throws FilesException {
    Path target = Files.isDirectory(destination) ? destination.resolve(name) : destination;
    if (Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
      throw new FilesException("already exists, not overwritten: " + target);
    }
    Path parent = target.toAbsolutePath().getParent();
    if (parent == null || !Files.isDirectory(parent)) {
      throw new FilesException("no such directory: " + parent);
    }
    return target;
  }

  static Path copy(Path target, Extract extract) throws IOException {
    Path parent = target.toAbsolutePath().getParent();
    Path staging = Files.createTempDirectory(parent, ".thaw-copy-");
    try {
      Path made = extract.into(staging).normalize();
      if (!made.startsWith(staging) || made.equals(staging)) {
        throw new FilesException("the copy would leave the destination: " + made);
      }
      if (!Files.exists(made, LinkOption.NOFOLLOW_LINKS)) {
        throw new IOException(
            "the filesystem reader wrote nothing for " + staging.relativize(made));
      }
      check(staging, made);
      try {
        Files.move(made, target, StandardCopyOption.ATOMIC_MOVE);
      } catch (FileAlreadyExistsException e) {
        throw new FilesException("already exists, not overwritten: " + target);
      }
      return target;
    } finally {
      delete(staging);
    }
  }

  /** Every path under {@code made} is a file, directory or symlink inside {@code staging}. */
  private static void check(Path staging, Path made) throws IOException {
    try (Stream<Path> all = Files.walk(made)) { // does not follow links
      for (Path p : (Iterable<Path>) all::iterator) {
        BasicFileAttributes a =
            Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        if (!p.normalize().startsWith(staging)) {
          throw new FilesException("refusing " + p + ": it escapes the destination");
        }
        if (!(a.isRegularFile() || a.isDirectory() || a.isSymbolicLink())) {
          throw new FilesException(
              "not a regular file, directory or symlink: " + staging.relativize(p));
        }
      }
    }
  }

  /** Whether this process runs as root (then copies keep ownership). */
  static boolean isRoot() {
    try {
      return ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).intValue() == 0;
    } catch (IOException | UnsupportedOperationException e) {
      return false;
    }
  }

  private static void delete(Path dir) throws IOException {
    if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try (Stream<Path> all = Files.walk(dir)) { // copied read-only directories first become writable
      all.filter(p -> Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS))
          .forEach(p -> p.toFile().setWritable(true, true));
    }
    try (Stream<Path> all = Files.walk(dir)) {
      for (Path p : (Iterable<Path>) all.sorted(Comparator.reverseOrder())::iterator) {
        Files.deleteIfExists(p);
      }
    }
  }
}
