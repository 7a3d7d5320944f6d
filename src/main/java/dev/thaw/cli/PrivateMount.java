package dev.thaw.cli;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fuse.Mounter;
import dev.thaw.image.Image;
import dev.thaw.image.ImageReader;
import dev.thaw.io.UserDirs;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A read-only FUSE mount of one image in a fresh 0700 directory under the user's state directory,
 * served by this process for as long as a tool that needs a volume file (7zz for NTFS) runs on one
 * of its volume files; this process itself never reads it. Only where this user may use FUSE
 * ({@link #possible}).
 */
final class PrivateMount implements AutoCloseable {
  private final Path dir;
  private final Thread server;

  private PrivateMount(Path dir, Thread server) {
    this.dir = dir;
    this.server = server;
  }

  /** Whether this user may open {@code /dev/fuse} (root, or a host that lets users mount). */
  static boolean possible() {
    Path fuse = Path.of("/dev/fuse");
    return Files.isReadable(fuse) && Files.isWritable(fuse);
  }

  /**
   * Mounts {@code image}, read through {@code pipeline} with little read-ahead; returns once it
   * answers.
   */
  static PrivateMount open(Image image, FetchPipeline pipeline) throws IOException {
    Mounter.Binding binding = Mounter.bind();
    Path base = UserDirs.state();
    Files.createDirectories(base);
    Path dir = Files.createTempDirectory(base, "files-mount-"); // 0700
    CountDownLatch ready = new CountDownLatch(1);
    AtomicReference<Throwable> failed = new AtomicReference<>();
    Mounter.Options options =
        new Mounter.Options(
            128L << 20, new ImageReader.Settings(2, 0, Duration.ofSeconds(60)), false, null, false);
    Thread t =
        new Thread(
            () -> {
              try {
                Mounter.run(
                    binding, List.of(image), pipeline, dir, options, System.err, ready::countDown);
              } catch (IOException | RuntimeException e) {
                failed.set(e);
              } finally {
                ready.countDown();
              }
            },
            "thaw-files-mount");
    t.setDaemon(true);
    t.start();
    PrivateMount m = new PrivateMount(dir, t);
    try {
      if (!ready.await(60, TimeUnit.SECONDS) || failed.get() != null || !Mounter.isMounted(dir)) {
        Throwable e = failed.get();
        throw new IOException(
            "cannot mount "
                + image.name()
                + " privately at "
                + dir
                + ": "
                + (e == null ? "it did not come up within 60 s" : e.getMessage()));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      m.close();
      throw new InterruptedIOException("interrupted mounting " + image.name());
    } catch (IOException e) {
      m.close();
      throw e;
    }
    return m;
  }

  /** The file of {@code name} (an image or one of its volumes) in the mount. */
  Path file(String name) {
    return dir.resolve(name);
  }

  @Override
  public void close() throws IOException {
    if (Mounter.isMounted(dir)) {
      try {
        new ProcessBuilder("fusermount", "-u", "-z", dir.toString())
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .start()
            .waitFor(30, TimeUnit.SECONDS);
        server.join(30_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    Files.deleteIfExists(dir);
  }
}
