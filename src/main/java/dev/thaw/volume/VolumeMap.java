package dev.thaw.volume;

import java.io.EOFException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * What an image holds: its partition table (GPT, MBR or none), the partitions, the logical volumes
 * of LVM2 physical volumes in a partition or in the whole image, and warnings about what could not
 * be trusted. Found by {@link #scan}; immutable and thread-safe.
 *
 * <p>A damaged or hostile table (entries past the end of the image or overlapping, absurd counts, a
 * looping chain, bad checksums in both GPT copies) yields no partitions and a warning; damaged LVM
 * metadata yields no logical volumes of that group and a warning. The scan reads a few sectors: the
 * first two (or the GPT's LBA 1 and array), the backup GPT header and array, an EBR per logical
 * partition, the first 68 KiB of each partition at most, and each PV's label and metadata text.
 */
public final class VolumeMap {
  private final String table;
  private final String filesystem;
  private final List<Volume> volumes;
  private final List<String> warnings;

  private VolumeMap(String table, String filesystem, List<Volume> volumes, List<String> warnings) {
    this.table = table;
    this.filesystem = filesystem;
    this.volumes = List.copyOf(volumes);
    this.warnings = List.copyOf(warnings);
  }

  /**
   * Scans an image. A table that cannot be trusted becomes a warning, never an exception.
   *
   * @param image the image's file name, the prefix of every volume's name ({@code drive-scsi0.img})
   * @throws IOException only when the image's bytes cannot be read (a chunk that cannot be
   *     fetched): nothing is known then
   */
  public static VolumeMap scan(String image, ByteSource source) throws IOException {
    List<String> warnings = new ArrayList<>();
    List<Volume> parts = List.of();
    String table = "none";
    try {
      Mbr.Entry[] slots =
          source.size() >= Mbr.SECTOR ? Mbr.entries(source.read(0, Mbr.SECTOR)) : null;
      if (slots != null && Mbr.isProtective(slots)) {
        table = "gpt";
        Gpt.Table t = Gpt.read(image, source);
        warnings.addAll(t.warnings());
        parts = t.partitions();
      } else if (slots != null && !isFilesystemBootSector(source)) {
        table = "mbr";
        parts = Mbr.partitions(image, source, slots);
        if (Gpt.present(source)) {
          warnings.add("a GPT header without a protective MBR is ignored; the MBR is used");
        }
      }
    } catch (VolumeException | EOFException | RuntimeException e) {
      warnings.add(
          table.toUpperCase(java.util.Locale.ROOT)
              + " partition table of "
              + image
              + " ignored: "
              + e.getMessage());
      parts = List.of();
    }
    List<Volume> out = new ArrayList<>();
    List<Lvm.Pv> pvs = new ArrayList<>();
    String wholeFs = "";
    if (parts.isEmpty() && table.equals("none")) {
      wholeFs = probe(image, new Extent(0, Math.max(1, source.size())), source, pvs, warnings);
    }
    for (Volume p : parts) {
      if (p.exposed()) {
        Extent whole = p.extents().get(0);
        out.add(
            p.withFilesystem(
                probe(
                    p.name(), whole, source.slice(whole.offset(), whole.length()), pvs, warnings)));
      } else {
        out.add(p);
      }
    }
    try {
      out.addAll(Lvm.volumes(image, pvs, warnings));
    } catch (RuntimeException e) {
      warnings.add("LVM volumes of " + image + " ignored: " + e);
    }
    for (int i = 0; i < out.size(); i++) { // what the logical volumes hold
      Volume v = out.get(i);
      if (v.kind() == Volume.Kind.LOGICAL_VOLUME && v.exposed()) {
        try {
          out.set(i, v.withFilesystem(Filesystems.probe(v.open(source))));
        } catch (EOFException | RuntimeException e) {
          warnings.add(v.name() + ": " + e.getMessage());
        }
      }
    }
    return new VolumeMap(table, wholeFs, out, warnings);
  }

  /** A map of an image whose first bytes could not be read: no volumes, the reason as a warning. */
  static VolumeMap unreadable(String warning) {
    return new VolumeMap("unknown", "", List.of(), List.of(warning));
  }

  /** The filesystem and PV label of a volume; a PV goes into {@code pvs}. */
  private static String probe(
      String where, Extent extent, ByteSource v, List<Lvm.Pv> pvs, List<String> warnings)
      throws IOException {
    try {
      Lvm.Pv pv = Lvm.read(where, extent, v);
      if (pv != null) {
        pvs.add(pv);
        return "LVM2_member";
      }
    } catch (VolumeException | EOFException | RuntimeException e) {
      warnings.add("LVM physical volume " + where + " ignored: " + e.getMessage());
      return "LVM2_member";
    }
    try {
      return Filesystems.probe(v);
    } catch (EOFException | RuntimeException e) {
      return "";
    }
  }

  /** A FAT/NTFS/exFAT volume without a partition table also ends its first sector with 55 AA. */
  private static boolean isFilesystemBootSector(ByteSource source) throws IOException {
    String fs = Filesystems.probe(source);
    return fs.equals("vfat") || fs.equals("ntfs") || fs.equals("exfat");
  }

  /**
   * {@code gpt}, {@code mbr}, {@code none}, or {@code unknown} when the image could not be read; a
   * table that was ignored (see {@link #warnings()}) is still named.
   */
  public String table() {
    return table;
  }

  /**
   * With no partition table: what the whole image holds (as {@link Volume#filesystem()}), else
   * empty.
   */
  public String filesystem() {
    return filesystem;
  }

  /** Every partition and logical volume, exposed or not: partitions in table order, then LVs. */
  public List<Volume> volumes() {
    return volumes;
  }

  /** The volumes shown as files. */
  public List<Volume> exposed() {
    return volumes.stream().filter(Volume::exposed).toList();
  }

  public Optional<Volume> find(String name) {
    return volumes.stream().filter(v -> v.name().equals(name)).findFirst();
  }

  /** What could not be trusted or read, for the log and the listing. */
  public List<String> warnings() {
    return warnings;
  }
}
