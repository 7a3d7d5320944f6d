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
 * An opened snapshot: its manifest, read and checked (signature and key fingerprint when a key is
 * given; a snapshot made with a key refuses to open without it), and the codec its chunks need.
 * Immutable and thread-safe.
 */
public final class Snapshot {
  /** Suffix of fixed-index archives in a snapshot directory. */
  public static final String FIXED_INDEX_SUFFIX = ".fidx";

  private final ChunkStore store;
  private final SnapshotPath path;
  private final Manifest manifest;
  private final BlobCodec codec;

  private Snapshot(ChunkStore store, SnapshotPath path, Manifest manifest, BlobCodec codec) {
    this.store = store;
    this.path = path;
    this.manifest = manifest;
    this.codec = codec;
  }

  /**
   * Reads a snapshot's manifest.
   *
   * @param key the key of an encrypted snapshot, or null
   */
  public static Snapshot open(ChunkStore store, SnapshotPath path, CryptConfig key) throws IOException {
    Manifest m = readManifest(store, path, key);
    boolean encrypted = m.keyFingerprint().isPresent()
        || m.files().stream().anyMatch(f -> f.cryptMode() == Manifest.CryptMode.ENCRYPT);
    if (encrypted && key == null) {
      throw new FormatException("snapshot " + path + " is encrypted"
          + m.keyFingerprint().map(fp -> " (key fingerprint " + fp.substring(0, Math.min(23, fp.length())) + ")").orElse("")
          + ": give its key file with --keyfile");
    }
    return new Snapshot(store, path, m, new BlobCodec(encrypted ? key : null));
  }

  /**
   * Reads and parses a snapshot's manifest; checks its signature when {@code key} is given, but
   * unlike {@link #open} does not insist on a key for an encrypted snapshot (for listing).
   */
  public static Manifest readManifest(ChunkStore store, SnapshotPath path, CryptConfig key)
      throws IOException {
    String where = store.location(path, Manifest.FILE_NAME);
    byte[] blob;
    try {
      blob = store.readFile(path, Manifest.FILE_NAME);
    } catch (NotFoundException e) {
      throw new NotFoundException("snapshot " + path + " not found in " + store.describe()
          + " (no " + where + ")");
    }
    Manifest m;
    try {
      byte[] json = new BlobCodec(null).decode(blob, -1, Manifest.MAX_JSON_BYTES);
      m = Manifest.parse(json, key);
    } catch (FormatException e) {
      throw new FormatException("snapshot " + path + ": manifest " + where + ": " + e.getMessage(), e);
    }
    return m;
  }

  public SnapshotPath path() {
    return path;
  }

  public Manifest manifest() {
    return manifest;
  }

  /** Whether the snapshot's chunks are encrypted. */
  public boolean encrypted() {
    return codec.crypt() != null;
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

  /**
   * Reads an image's index and checks it against the manifest (size and checksum).
   *
   * @param archive {@code NAME.img}; {@code NAME.img.fidx} is accepted too
   */
  public FixedIndex readIndex(String archive) throws IOException {
    String file = archive.endsWith(FIXED_INDEX_SUFFIX) ? archive : archive + FIXED_INDEX_SUFFIX;
    Manifest.FileInfo info = manifest.file(file).orElseThrow(() -> new NotFoundException(
        "snapshot " + path + " has no image archive '" + archive + "' (it has: "
            + String.join(", ", images()) + ")"));
    String where = store.location(path, file);
    FixedIndex index = FixedIndex.parse(store.readFile(path, file), where);
    if (index.size() != info.size() || !MessageDigest.isEqual(index.checksum(), info.csum())) {
      throw new FormatException(where + ": index does not match the manifest (size "
          + index.size() + " vs " + info.size() + ", or checksum differs)");
    }
    return index;
  }

  /** Opens an image for reading through {@code pipeline}. */
  public Image openImage(String archive, FetchPipeline pipeline) throws IOException {
    String name = archive.endsWith(FIXED_INDEX_SUFFIX)
        ? archive.substring(0, archive.length() - FIXED_INDEX_SUFFIX.length()) : archive;
    return Image.of(name, readIndex(archive), codec, pipeline);
  }

  /** The codec this snapshot's chunks decode with. */
  public BlobCodec codec() {
    return codec;
  }
}
