package dev.thaw.restore;

import dev.thaw.fetch.ChunkFetchException;
import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.Futures;
import dev.thaw.fetch.Priority;
import dev.thaw.format.BlobCodec;
import dev.thaw.format.Digest;
import dev.thaw.format.Manifest;
import dev.thaw.image.Image;
import dev.thaw.image.Snapshot;
import java.io.IOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Checks every chunk of every image of a snapshot, or of one image (a casync image has no
 * snapshot), through the fetch pipeline (so with the very checks a restore makes), each distinct
 * chunk once, plus the snapshot's blob files. Reports every bad or missing chunk rather than
 * stopping at the first, and names every archive it cannot check (a dynamic index {@code .didx}:
 * the file archives of container and host backups) so that a report never claims more than was
 * checked. {@link #run()} once, from one thread; {@link #checkedBytes()} from any.
 */
public final class Verifier {
  /** One problem found: which file and chunk, and what is wrong. */
  public record Problem(String file, String digest, String message, boolean missing) {}

  /** An archive of the snapshot that was not checked, and why. */
  public record NotChecked(String file, String reason) {}

  /** What was checked, what was found, and what was left unchecked. */
  public record Report(
      int chunks, long bytes, List<Problem> problems, List<NotChecked> notChecked) {}

  private static final String DYNAMIC_INDEX_SUFFIX = ".didx";

  private final Snapshot snapshot;
  private final FetchPipeline pipeline;
  private final Image image;
  private final int window;
  private final long windowBytes;
  private final AtomicLong checkedBytes = new AtomicLong();

  /** Checks a snapshot's blobs and images, {@code window} chunks at a time. */
  public Verifier(Snapshot snapshot, FetchPipeline pipeline, int window) {
    this(snapshot, pipeline, null, window, 0);
  }

  /**
   * Checks one image's chunks, keeping at least {@code window} chunks and at least {@code
   * windowBytes} bytes requested.
   */
  public Verifier(Image image, int window, long windowBytes) {
    this(null, null, image, window, windowBytes);
  }

  private Verifier(
      Snapshot snapshot, FetchPipeline pipeline, Image image, int window, long windowBytes) {
    this.snapshot = snapshot;
    this.pipeline = pipeline;
    this.image = image;
    this.window = Math.max(1, window);
    this.windowBytes = windowBytes;
  }

  /** Plain bytes verified so far. */
  public long checkedBytes() {
    return checkedBytes.get();
  }

  private record Arrival(String file, Digest digest, Throwable error, int length) {}

  public Report run() throws InterruptedException {
    Checks checks = new Checks();
    if (image != null) {
      checks.image(image.name(), image);
    } else {
      for (Manifest.FileInfo f : snapshot.manifest().files()) {
        if (f.filename().endsWith(".blob")) {
          checkBlob(f, checks.problems);
        } else if (f.filename().endsWith(DYNAMIC_INDEX_SUFFIX)) {
          checks.notChecked.add(
              new NotChecked(
                  f.filename(),
                  "a dynamic index (a file archive or"
                      + " catalog of a container or host backup); thaw checks image archives (.fidx) and"
                      + " blobs only"));
        } else if (!f.filename().endsWith(Snapshot.FIXED_INDEX_SUFFIX)) {
          checks.notChecked.add(
              new NotChecked(f.filename(), "an archive of a kind thaw does not know"));
        }
      }
      for (String name : snapshot.images()) {
        Image img;
        try {
          img = snapshot.openImage(name, pipeline);
        } catch (IOException e) {
          checks.problems.add(
              new Problem(name + Snapshot.FIXED_INDEX_SUFFIX, null, e.getMessage(), false));
          continue;
        }
        checks.image(name, img);
      }
    }
    checks.drain(0);
    return new Report(checks.chunks, checkedBytes.get(), checks.problems, checks.notChecked);
  }

  /** One run's bookkeeping: chunks requested and not yet recorded, and what was found. */
  private final class Checks {
    final List<Problem> problems = new ArrayList<>();
    final List<NotChecked> notChecked = new ArrayList<>();
    final Set<Digest> seen = new HashSet<>();
    final BlockingQueue<Arrival> arrivals = new LinkedBlockingQueue<>();
    final Window outstanding = new Window(window, windowBytes);
    int chunks;

    void image(String name, Image img) throws InterruptedException {
      for (int i = 0; i < img.chunkCount(); i++) {
        Digest d = img.digest(i);
        if (img.isZero(i) || !seen.add(d)) {
          continue;
        }
        int len = img.index().length(i);
        while (!outstanding.hasRoom()) {
          drain(outstanding.outstanding() - 1);
        }
        outstanding.requested(len);
        chunks++;
        // the arrival carries the failure, if any: the returned future adds nothing
        var unused =
            img.chunk(i, Priority.BACKGROUND)
                .whenComplete(
                    (c, e) -> {
                      if (c != null) {
                        c.release(); // verified: the bytes are not needed
                      }
                      arrivals.add(new Arrival(name, d, e, len));
                    });
      }
    }

    /** Records arrivals until at most {@code left} chunks are outstanding. */
    void drain(int left) throws InterruptedException {
      while (outstanding.outstanding() > left) {
        Arrival a = arrivals.take();
        outstanding.received(a.length());
        record(a, problems);
      }
    }
  }

  private void record(Arrival a, List<Problem> problems) {
    if (a.error() == null) {
      checkedBytes.addAndGet(a.length());
      return;
    }
    Throwable c = Futures.cause(a.error());
    boolean missing = c instanceof ChunkFetchException cfe && cfe.missing();
    problems.add(new Problem(a.file(), a.digest().hex(), c.getMessage(), missing));
  }

  private void checkBlob(Manifest.FileInfo f, List<Problem> problems) {
    try {
      byte[] raw = pipeline.store().readFile(snapshot.path(), f.filename());
      byte[] csum = MessageDigest.getInstance("SHA-256").digest(raw);
      if (!MessageDigest.isEqual(csum, f.csum()) || raw.length != f.size()) {
        problems.add(new Problem(f.filename(), null, "blob does not match the manifest", false));
        return;
      }
      if (BlobCodec.kind(raw).encrypted() != f.encrypted()) {
        problems.add(
            new Problem(
                f.filename(),
                null,
                f.encrypted()
                    ? "blob is not encrypted, but its crypt-mode is encrypt"
                    : "blob is encrypted, but its crypt-mode is " + f.cryptMode().json(),
                false));
        return;
      }
      snapshot.codec(f).decode(raw, -1, BlobCodec.MAX_BLOB);
    } catch (IOException e) {
      problems.add(new Problem(f.filename(), null, e.getMessage(), false));
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }
}
