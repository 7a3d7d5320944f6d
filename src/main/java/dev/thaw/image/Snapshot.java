package dev.thaw.image;

import dev.thaw.crypto.CryptConfig;
import dev.thaw.fetch.FetchPipeline;
import dev.thaw.format.BlobCodec;
import dev.thaw.format.FixedIndex;
import dev.thaw.format.FormatException;
import dev.thaw.format.Manifest;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.NotFoundException;
import dev.thaw.store.SnapshotPath;
import java.io.IOException;
import java.security.MessageDigest;
import java.util.List;

/**
 * An opened snapshot: its manifest, read, checked and admitted by a {@link KeyPolicy}, and the
 * codec of each archive, chosen from the archive's crypt-mode. Immutable and thread-safe.
 */
public final class Snapshot {
  /** Suffix of fixed-index archives in a snapshot directory. */
  public static final String FIXED_INDEX_SUFFIX = ".fidx";

  private final ChunkStore store;
  private final SnapshotPath path;
  private final Manifest manifest;
  private final KeyPolicy policy;

  private Snapshot(ChunkStore store, SnapshotPath path, Manifest manifest, KeyPolicy policy) {
    this.store = store;
    this.path = path;
    this.manifest = manifest;
    this.policy = policy;
  }

  /**
   * Reads a snapshot's manifest and admits it under {@code policy} (see {@link KeyPolicy}: with a
   * key, only a manifest signed by it; without, nothing encrypted).
   */
  public static Snapshot open(ChunkStore store, SnapshotPath path, KeyPolicy policy)
      throws IOException {
    Manifest m = readManifest(store, path, policy.key());
    policy.admit(path, m);
    return new Snapshot(store, path, m, policy);
  }

  /**
   * Reads and parses a snapshot's manifest; checks its signature when {@code key} is given and the
   * manifest is signed, but unlike {@link #open} admits nothing (for listing).
   */
  public static Manifest readManifest(ChunkStore store, SnapshotPath path, CryptConfig key)
      throws IOException {
    String where = store.location(path, Manifest.FILE_NAME);
    byte[] blob;
    try {
      blob = store.readFile(path, Manifest.FILE_NAME);
    } catch (NotFoundException e) {
      throw new NotFoundException(
          "snapshot "
              + path
              + " not found in "
              + store.describe()
              + " (no "
              + where
              + "; a snapshot directory without it is a backup in progress or an"
              + " aborted one)");
    }
    try {
      byte[] json = new BlobCodec(null).decode(blob, -1, Manifest.MAX_JSON_BYTES);
      return Manifest.parse(json, key);
    } catch (FormatException e) {
      throw new FormatException(
          "snapshot " + path + ": manifest " + where + ": " + e.getMessage(), e);
    }
  }

  public SnapshotPath path() {
    return path;
  }

  public Manifest manifest() {
    return manifest;
  }

  /** Whether any of the snapshot's archives is encrypted. */
  public boolean encrypted() {
    return manifest.encrypted();
  }

  /** Names of the image archives (fixed indexes), e.g. {@code drive-scsi0.img}. */
  public List<String> images() {
    return images(manifest);
  }

  /** Names of the image archives a manifest lists, in its order. */
  public static List<String> images(Manifest manifest) {
    return manifest.files().stream()
        .map(Manifest.FileInfo::filename)
        .filter(f -> f.endsWith(FIXED_INDEX_SUFFIX))
        .map(f -> f.substring(0, f.length() - FIXED_INDEX_SUFFIX.length()))
        .toList();
  }

  private Manifest.FileInfo imageInfo(String archive) throws NotFoundException {
    String file = archive.endsWith(FIXED_INDEX_SUFFIX) ? archive : archive + FIXED_INDEX_SUFFIX;
    return manifest
        .file(file)
        .orElseThrow(
            () ->
                new NotFoundException(
                    "snapshot "
                        + path
                        + " has no image archive '"
                        + archive
                        + "' (it has: "
                        + String.join(", ", images())
                        + ")"));
  }

  /**
   * Reads an image's index and checks it against the manifest (size and checksum).
   *
   * @param archive {@code NAME.img}; {@code NAME.img.fidx} is accepted too
   */
  public FixedIndex readIndex(String archive) throws IOException {
    Manifest.FileInfo info = imageInfo(archive);
    String where = store.location(path, info.filename());
    FixedIndex index = FixedIndex.parse(store.readFile(path, info.filename()), where);
    if (index.size() != info.size() || !MessageDigest.isEqual(index.checksum(), info.csum())) {
      throw new FormatException(
          where
              + ": index does not match the manifest (size "
              + index.size()
              + " vs "
              + info.size()
              + ", or checksum differs)");
    }
    return index;
  }

  /** Opens an image for reading through {@code pipeline}, with the codec its crypt-mode needs. */
  public Image openImage(String archive, FetchPipeline pipeline) throws IOException {
    String name =
        archive.endsWith(FIXED_INDEX_SUFFIX)
            ? archive.substring(0, archive.length() - FIXED_INDEX_SUFFIX.length())
            : archive;
    return Image.of(name, readIndex(archive), codec(imageInfo(archive)), pipeline);
  }

  /**
   * The codec a file of this snapshot decodes with: keyed for crypt-mode {@code encrypt}, plain
   * (SHA-256 digests) for {@code none} and {@code sign-only}.
   */
  public BlobCodec codec(Manifest.FileInfo file) throws FormatException {
    return policy.codec(file);
  }
}
