package dev.thaw.image;

import dev.thaw.crypto.CryptConfig;
import dev.thaw.format.BlobCodec;
import dev.thaw.format.FormatException;
import dev.thaw.format.Manifest;
import dev.thaw.store.SnapshotPath;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * The one place that decides whether a snapshot's manifest is trusted, given the key the user named
 * or none, and which codec each archive's chunks decode with.
 *
 * <ul>
 *   <li>With a key, the manifest must be signed by that key: the signature verifies under it and
 *       the fingerprint beside it, when there is one, is the key's (both checked by {@link
 *       Manifest#parse}). An unsigned manifest is refused: anyone who can write to the datastore
 *       can make one, for example by stripping the signature from an encrypted snapshot's manifest,
 *       setting crypt-mode {@code none} and pointing the index at plain chunks of their own. {@code
 *       allowUnsigned} opens such a snapshot anyway, with a warning.
 *   <li>Without a key, a snapshot with an encrypted archive is refused; a signed one whose archives
 *       are plain ({@code sign-only}) opens, with a note that its signature was not checked.
 * </ul>
 *
 * <p>An archive of crypt-mode {@code encrypt} decodes with the key; {@code none} and {@code
 * sign-only} archives are plain chunks under plain SHA-256 digests (PBS {@code
 * FileInfo::chunk_crypt_mode}). Each codec only takes chunks of its own kind.
 *
 * <p>Thread-safe. One policy serves every snapshot a command opens (a mount of a whole datastore
 * opens many); its two codecs are shared by them, and each note is given once per snapshot.
 */
public final class KeyPolicy {
  private final CryptConfig key;
  private final boolean allowUnsigned;
  private final Consumer<String> notes;
  private final BlobCodec plain = new BlobCodec(null);
  private final BlobCodec keyed;
  private final Set<SnapshotPath> noted = ConcurrentHashMap.newKeySet();

  private KeyPolicy(CryptConfig key, boolean allowUnsigned, Consumer<String> notes) {
    this.key = key;
    this.allowUnsigned = allowUnsigned;
    this.notes = notes;
    this.keyed = key == null ? null : new BlobCodec(key);
  }

  /**
   * A policy for {@code key}.
   *
   * @param key the key the user gave, or null
   * @param allowUnsigned with a key, open a snapshot whose manifest is not signed (warns)
   * @param notes receives the warnings and notes meant for the user, one line each
   */
  public static KeyPolicy of(CryptConfig key, boolean allowUnsigned, Consumer<String> notes) {
    if (allowUnsigned && key == null) {
      throw new IllegalArgumentException("--allow-unsigned only makes sense with --keyfile");
    }
    return new KeyPolicy(key, allowUnsigned, notes);
  }

  /** The strict policy for {@code key} (or none), its notes dropped; for callers that show none. */
  public static KeyPolicy strict(CryptConfig key) {
    return new KeyPolicy(key, false, note -> {});
  }

  /** The key the user gave, or null. */
  public CryptConfig key() {
    return key;
  }

  /**
   * Admits a snapshot whose manifest was parsed with {@link #key()}, or refuses it.
   *
   * @throws FormatException naming the snapshot and what to do, when it is not to be trusted
   */
  void admit(SnapshotPath path, Manifest m) throws FormatException {
    if (key != null) {
      if (m.signatureChecked()) {
        return;
      }
      String fp = key.shortFingerprint();
      if (!allowUnsigned) {
        throw new FormatException(
            "snapshot "
                + path
                + ": its manifest is not signed, but a key was"
                + " given (fingerprint "
                + fp
                + "). Every snapshot made with a key is signed, so this one"
                + " was made without that key or altered by someone who can write to the datastore."
                + " Refusing to trust it; open a snapshot known to be plain without --keyfile, or add"
                + " --allow-unsigned to open it anyway");
      }
      note(
          path,
          "WARNING: snapshot "
              + path
              + ": its manifest is not signed by the given key ("
              + fp
              + "); opened anyway because of --allow-unsigned. Anyone who can write to the datastore"
              + " can make such a snapshot: trust its data only as far as every writer of the datastore");
      return;
    }
    if (m.encrypted()) {
      throw new FormatException(
          "snapshot "
              + path
              + " is encrypted"
              + m.keyFingerprint()
                  .map(f -> " (key fingerprint " + shortFingerprint(f) + ")")
                  .orElse("")
              + ": give its key file with --keyfile");
    }
    if (m.signed()
        || m.keyFingerprint().isPresent()
        || m.files().stream().anyMatch(f -> f.cryptMode() == Manifest.CryptMode.SIGN_ONLY)) {
      note(
          path,
          "note: snapshot "
              + path
              + " is signed"
              + m.keyFingerprint()
                  .map(f -> " (key fingerprint " + shortFingerprint(f) + ")")
                  .orElse("")
              + ", but no key was given: its signature was not checked");
    }
  }

  /** The codec for a file of an admitted snapshot. */
  BlobCodec codec(Manifest.FileInfo file) throws FormatException {
    if (!file.encrypted()) {
      return plain;
    }
    if (keyed == null) {
      throw new FormatException(
          file.filename() + " is encrypted: give its key file with --keyfile");
    }
    return keyed;
  }

  private void note(SnapshotPath path, String text) {
    if (noted.add(path)) {
      notes.accept(text);
    }
  }

  private static String shortFingerprint(String fp) {
    return fp.length() > 23 ? fp.substring(0, 23) : fp;
  }
}
