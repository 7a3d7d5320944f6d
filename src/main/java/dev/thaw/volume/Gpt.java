package dev.thaw.volume;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The GUID partition table (UEFI specification, chapter 5): the primary header at LBA 1 and its
 * entry array, the backup header at the disk's last LBA and its own array. Both header CRCs and
 * both array CRCs are checked; the backup is used when the primary is damaged. Sectors of 512 bytes
 * are tried first, then 4096.
 */
final class Gpt {
  /** Entry arrays larger than this are hostile (the usual one is 16 KiB). */
  static final int MAX_ARRAY_BYTES = 1 << 20;

  static final String SIGNATURE = "EFI PART";

  private Gpt() {}

  /** A parsed, checked header with its entry array. */
  private record Header(
      long myLba,
      long alternateLba,
      long firstUsable,
      long lastUsable,
      String diskGuid,
      long entriesLba,
      int count,
      int entrySize,
      byte[] entries) {}

  /** The partitions, and warnings about a damaged copy that was not used. */
  record Table(int sectorSize, List<Volume> partitions, List<String> warnings) {}

  /** Whether either sector size finds the signature at LBA 1. */
  static boolean present(ByteSource disk) throws IOException {
    for (int ss : new int[] {512, 4096}) {
      if (disk.size() >= 2L * ss && Bytes.ascii(disk.read(ss, 8), 0, SIGNATURE)) {
        return true;
      }
    }
    return false;
  }

  /**
   * Reads the table.
   *
   * @throws VolumeException when neither header with its array is intact, or the one used describes
   *     partitions past the usable area or overlapping
   */
  static Table read(String image, ByteSource disk) throws IOException, VolumeException {
    int ss = disk.size() >= 1024 && Bytes.ascii(disk.read(512, 8), 0, SIGNATURE) ? 512 : 4096;
    long sectors = disk.size() / ss;
    if (sectors < 3) {
      throw new VolumeException("image too small for a GPT");
    }
    List<String> warnings = new ArrayList<>();
    Header primary = null;
    String primaryProblem = null;
    try {
      primary = header(disk, ss, 1, sectors);
    } catch (VolumeException e) {
      primaryProblem = e.getMessage();
    }
    long backupLba = primary != null ? primary.alternateLba() : sectors - 1;
    Header backup = null;
    String backupProblem = null;
    try {
      backup = header(disk, ss, backupLba, sectors);
    } catch (VolumeException e) {
      backupProblem = e.getMessage();
    }
    Header use;
    if (primary != null) {
      use = primary;
      if (backup == null) {
        warnings.add(
            "backup GPT header at LBA "
                + backupLba
                + " is damaged ("
                + backupProblem
                + "); using the primary");
      } else if (backup.alternateLba() != 1 || !backup.diskGuid().equals(primary.diskGuid())) {
        warnings.add(
            "backup GPT header at LBA "
                + backupLba
                + " does not match the primary; using the primary");
      }
    } else if (backup != null) {
      use = backup;
      warnings.add(
          "primary GPT header is damaged ("
              + primaryProblem
              + "); using the backup at LBA "
              + backupLba);
    } else {
      throw new VolumeException(
          "both GPT headers are damaged: primary: "
              + primaryProblem
              + "; backup at LBA "
              + backupLba
              + ": "
              + backupProblem);
    }
    return new Table(ss, partitions(image, use, ss), warnings);
  }

  /** Reads and checks the header at {@code lba} and its entry array. */
  private static Header header(ByteSource disk, int ss, long lba, long sectors)
      throws IOException, VolumeException {
    if (lba < 1 || lba >= sectors) {
      throw new VolumeException("header LBA " + lba + " is outside the image");
    }
    byte[] h = disk.read(lba * ss, ss);
    if (!Bytes.ascii(h, 0, SIGNATURE)) {
      throw new VolumeException("no signature");
    }
    long headerSize = Bytes.u32(h, 12);
    if (headerSize < 92 || headerSize > ss) {
      throw new VolumeException("header size " + headerSize);
    }
    long crc = Bytes.u32(h, 16);
    byte[] copy = h.clone();
    copy[16] = copy[17] = copy[18] = copy[19] = 0;
    if (Bytes.crc32(copy, 0, (int) headerSize) != crc) {
      throw new VolumeException("header CRC mismatch");
    }
    long my = Bytes.u64(h, 24);
    long alternate = Bytes.u64(h, 32);
    long first = Bytes.u64(h, 40);
    long last = Bytes.u64(h, 48);
    long entriesLba = Bytes.u64(h, 72);
    long count = Bytes.u32(h, 80);
    long entrySize = Bytes.u32(h, 84);
    long arrayCrc = Bytes.u32(h, 88);
    if (my != lba) {
      throw new VolumeException("header says it is at LBA " + my);
    }
    if (first < 2 || first > last || last >= sectors || last < 0) {
      throw new VolumeException(
          "usable LBAs " + first + ".." + last + " do not fit " + sectors + " sectors");
    }
    if (entrySize < 128 || entrySize % 8 != 0 || count > MAX_ARRAY_BYTES / entrySize) {
      throw new VolumeException(count + " entries of " + entrySize + " bytes");
    }
    int bytes = (int) (count * entrySize);
    long arraySectors = ((long) bytes + ss - 1) / ss;
    boolean beforeUsable =
        entriesLba >= 2 && entriesLba < sectors && entriesLba + arraySectors <= first;
    boolean afterUsable = entriesLba > last && entriesLba + arraySectors <= sectors;
    if (!beforeUsable && !afterUsable) {
      throw new VolumeException(
          "entry array at LBA " + entriesLba + " overlaps the usable area or the image's end");
    }
    byte[] entries = disk.read(entriesLba * ss, bytes);
    if (Bytes.crc32(entries, 0, bytes) != arrayCrc) {
      throw new VolumeException("entry array CRC mismatch");
    }
    return new Header(
        my,
        alternate,
        first,
        last,
        Bytes.guid(h, 56),
        entriesLba,
        (int) count,
        (int) entrySize,
        entries);
  }

  private static List<Volume> partitions(String image, Header h, int ss) throws VolumeException {
    List<Volume> out = new ArrayList<>();
    List<long[]> used = new ArrayList<>();
    byte[] zero = new byte[16];
    for (int i = 0; i < h.count(); i++) {
      int at = i * h.entrySize();
      if (java.util.Arrays.equals(h.entries(), at, at + 16, zero, 0, 16)) {
        continue;
      }
      long first = Bytes.u64(h.entries(), at + 32);
      long last = Bytes.u64(h.entries(), at + 40);
      if (first < h.firstUsable() || last > h.lastUsable() || first > last) {
        throw new VolumeException(
            "GPT partition "
                + (i + 1)
                + " (LBA "
                + first
                + ".."
                + last
                + ") lies outside the usable LBAs "
                + h.firstUsable()
                + ".."
                + h.lastUsable());
      }
      used.add(new long[] {first, last + 1});
      String type = Bytes.guid(h.entries(), at);
      long size = (last - first + 1) * ss;
      out.add(
          new Volume(
              image + ".p" + (i + 1),
              Volume.Kind.PARTITION,
              "gpt",
              type,
              PartitionTypes.gpt(type),
              name(h.entries(), at + 56),
              Bytes.guid(h.entries(), at + 16),
              List.of(new Extent(first * ss, size)),
              size,
              "",
              null));
    }
    Mbr.overlaps(used, "GPT partitions overlap");
    return out;
  }

  /** The entry's UTF-16LE name (72 bytes), up to the first NUL. */
  private static String name(byte[] b, int at) {
    int len = 0;
    while (len < 72 && (b[at + len] != 0 || b[at + len + 1] != 0)) {
      len += 2;
    }
    return new String(b, at, len, StandardCharsets.UTF_16LE);
  }
}
