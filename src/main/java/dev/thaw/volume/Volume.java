package dev.thaw.volume;

import dev.thaw.image.ImageReader;
import java.io.EOFException;
import java.io.IOException;
import java.util.List;
import java.util.Objects;

/**
 * A partition or a logical volume found in an image: where its bytes lie, what its table says it
 * is, and whether thaw can show it as a file of its own.
 *
 * <p>Names are {@code IMAGE.pN} for partitions, numbered as Linux numbers them (MBR: 1-4 for the
 * four primary slots, 5 and up for logical partitions in the order of the extended partition's
 * chain; GPT: the entry's index + 1), and {@code IMAGE.VG-LV} for logical volumes, with every
 * {@code -} inside the VG or LV name doubled as in {@code /dev/mapper} (so {@code vg0-my--lv} is LV
 * {@code my-lv} of VG {@code vg0}). IMAGE is the image's file name, e.g. {@code drive-scsi0.img}.
 *
 * @param name the file name, as above
 * @param kind partition or logical volume
 * @param scheme {@code mbr}, {@code gpt} or {@code lvm}
 * @param typeId the table's type: MBR type as {@code 0x83}, GPT type GUID, LVM segment types joined
 *     by {@code +} (e.g. {@code linear}, {@code striped}, {@code thin})
 * @param type a readable name of the type, e.g. {@code Linux filesystem}
 * @param label the GPT partition name, or {@code VG/LV} for a logical volume; empty if none
 * @param uuid the GPT partition GUID or the LV's id; empty if none (MBR)
 * @param extents where the bytes lie within the image, in order; empty when not exposed
 * @param size bytes (the sum of the extents; for an unexposed volume, what the table says)
 * @param filesystem what its first bytes hold ({@code ext4}, {@code ntfs}, {@code vfat}, {@code
 *     exfat}, {@code xfs}, {@code btrfs}, {@code swap}, {@code LVM2_member}, {@code crypto_LUKS}),
 *     or empty
 * @param notExposed why it is not shown as a file, or null when it is
 */
public record Volume(
    String name,
    Kind kind,
    String scheme,
    String typeId,
    String type,
    String label,
    String uuid,
    List<Extent> extents,
    long size,
    String filesystem,
    String notExposed) {

  public enum Kind {
    PARTITION,
    LOGICAL_VOLUME
  }

  public Volume {
    Objects.requireNonNull(name);
    extents = List.copyOf(extents);
    if (notExposed == null && extents.isEmpty()) {
      throw new IllegalArgumentException(name + ": an exposed volume needs extents");
    }
  }

  /** Whether the volume is shown as a file ({@link #notExposed()} is null). */
  public boolean exposed() {
    return notExposed == null;
  }

  /** Where the volume starts within the image (its first extent), or -1 when it has none. */
  public long offset() {
    return extents.isEmpty() ? -1 : extents.get(0).offset();
  }

  /**
   * The volume's bytes as reads of {@code image}, the image this volume was found in: the
   * concatenation of its extents.
   *
   * @throws IllegalStateException when the volume is not exposed
   */
  public ByteSource open(ByteSource image) {
    if (!exposed()) {
      throw new IllegalStateException(name + " is not exposed: " + notExposed);
    }
    return new ExtentSource(image, extents);
  }

  /**
   * Reads up to {@code len} bytes at {@code offset} of this volume through {@code image}, a handle
   * of the image it was found in, handing them to {@code sink} in order as {@link
   * ImageReader.Handle#read(long, int, ImageReader.Sink)} does: plain offset reads of the image,
   * through its cache, read-ahead and verification. Returns the bytes read, 0 at or past the end.
   *
   * @throws IllegalStateException when the volume is not exposed
   */
  public int read(ImageReader.Handle image, long offset, int len, ImageReader.Sink sink)
      throws IOException {
    if (!exposed()) {
      throw new IllegalStateException(name + " is not exposed: " + notExposed);
    }
    if (offset < 0 || offset >= size || len <= 0) {
      return 0;
    }
    int n = (int) Math.min(len, size - offset);
    int done = 0;
    long start = 0; // of the extent within the volume
    for (Extent e : extents) {
      long at = offset + done;
      if (done == n) {
        break;
      }
      if (at < start + e.length()) {
        int piece = (int) Math.min(n - done, start + e.length() - at);
        int shift = done;
        int got =
            image.read(
                e.offset() + at - start,
                piece,
                (d, data, from, k) -> sink.accept(shift + d, data, from, k));
        if (got != piece) {
          throw new EOFException(
              name + ": the image ends within the volume, at " + (e.offset() + at - start + got));
        }
        done += piece;
      }
      start += e.length();
    }
    return done;
  }

  Volume withFilesystem(String fs) {
    return new Volume(name, kind, scheme, typeId, type, label, uuid, extents, size, fs, notExposed);
  }
}
