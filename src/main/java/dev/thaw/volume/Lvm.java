package dev.thaw.volume;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * LVM2 physical volumes and the logical volumes of their volume groups, read without device-mapper:
 * the label ({@code LABELONE} in one of the first four sectors), the PV header with its data and
 * metadata areas, the metadata area header and the newest metadata text, all checksums checked
 * (LVM2's CRC-32 from {@link #INITIAL_CRC}); then the volume group's text. Logical volumes made of
 * linear segments (type {@code striped} with one stripe) on PVs of this image are exposed; the
 * others are listed with the reason.
 */
final class Lvm {
  static final long INITIAL_CRC = 0xf597a6cfL;
  static final String MDA_MAGIC = " LVM2 x[5A%r0N*>";

  /** Metadata text longer than this is hostile (a VG of thousands of LVs takes about 1 MiB). */
  static final int MAX_METADATA = 8 << 20;

  static final int MAX_LOCATIONS = 16;
  static final int MAX_SEGMENTS = 10_000;
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}");

  private Lvm() {}

  /** A PV found in the image: where it lies, its UUID, its newest metadata text. */
  record Pv(String where, Extent extent, String uuid, String metadata) {}

  /**
   * Reads the PV label of {@code pv}; null when the source holds none.
   *
   * @param where how warnings name the PV ({@code drive-scsi0.img.p2})
   * @throws VolumeException when the label or its metadata is damaged
   */
  static Pv read(String where, Extent extent, ByteSource pv) throws IOException, VolumeException {
    if (pv.size() < 4 * 512) {
      return null;
    }
    byte[] head = pv.read(0, 4 * 512);
    for (int s = 0; s < 4; s++) {
      int at = s * 512;
      if (!Bytes.ascii(head, at, "LABELONE")) {
        continue;
      }
      if (Bytes.u64(head, at + 8) != s) {
        throw new VolumeException(
            "LVM label in sector " + s + " says sector " + Bytes.u64(head, at + 8));
      }
      if (Bytes.crc32Raw(INITIAL_CRC, head, at + 20, 512 - 20) != Bytes.u32(head, at + 16)) {
        throw new VolumeException("LVM label checksum mismatch");
      }
      if (!Bytes.ascii(head, at + 24, "LVM2 001")) {
        return null;
      }
      long offset = Bytes.u32(head, at + 20);
      if (offset < 32 || offset > 512 - 40 - 32) {
        throw new VolumeException("LVM PV header offset " + offset);
      }
      return pvHeader(where, extent, pv, head, at + (int) offset);
    }
    return null;
  }

  private static Pv pvHeader(String where, Extent extent, ByteSource pv, byte[] head, int at)
      throws IOException, VolumeException {
    int end = (at / 512 + 1) * 512; // the header ends with its label sector
    String uuid = Bytes.ascii(head, at, 32);
    int p = at + 40;
    List<long[]> mdas = new ArrayList<>();
    for (int list = 0;
        list < 2;
        list++) { // data areas, then metadata areas; each ends with a zero offset
      for (int n = 0; ; n++) {
        if (p + 16 > end || n > MAX_LOCATIONS) {
          throw new VolumeException("LVM PV header area list does not end");
        }
        long off = Bytes.u64(head, p);
        long size = Bytes.u64(head, p + 8);
        p += 16;
        if (off == 0) {
          break;
        }
        if (list == 1) {
          mdas.add(new long[] {off, size});
        }
      }
    }
    String newest = null;
    long newestSeq = -1;
    List<String> problems = new ArrayList<>();
    for (long[] mda : mdas) {
      try {
        String text = metadata(pv, mda[0], mda[1]);
        if (text == null) {
          continue;
        }
        long seq = seqno(text);
        if (seq > newestSeq) {
          newest = text;
          newestSeq = seq;
        }
      } catch (VolumeException e) {
        problems.add(e.getMessage());
      }
    }
    if (newest == null && !problems.isEmpty()) {
      throw new VolumeException(String.join("; ", problems));
    }
    return new Pv(where, extent, uuid, newest);
  }

  /** The current metadata text of the area at {@code off}; null when the area is unused. */
  private static String metadata(ByteSource pv, long off, long size)
      throws IOException, VolumeException {
    if (off < 0 || size < 1024 || off > pv.size() - size) {
      throw new VolumeException("LVM metadata area " + off + "+" + size + " lies outside the PV");
    }
    byte[] h = pv.read(off, 512);
    if (Bytes.crc32Raw(INITIAL_CRC, h, 4, 512 - 4) != Bytes.u32(h, 0)) {
      throw new VolumeException("LVM metadata area header checksum mismatch");
    }
    if (!Bytes.ascii(h, 4, MDA_MAGIC) || Bytes.u32(h, 20) != 1 || Bytes.u64(h, 24) != off) {
      throw new VolumeException("LVM metadata area header is not of version 1 at " + off);
    }
    long relOff = Bytes.u64(h, 40);
    long len = Bytes.u64(h, 48);
    long checksum = Bytes.u32(h, 56);
    long flags = Bytes.u32(h, 60);
    if (relOff == 0 || (flags & 1) != 0) {
      return null;
    }
    if (len <= 0 || len > MAX_METADATA || len > size - 512 || relOff < 512 || relOff >= size) {
      throw new VolumeException(
          "LVM metadata of " + len + " bytes at " + relOff + " does not fit its area");
    }
    byte[] text = new byte[(int) len];
    int first = (int) Math.min(len, size - relOff); // the area is a ring after its header
    pv.read(off + relOff, text, 0, first);
    if (first < len) {
      pv.read(off + 512, text, first, (int) len - first);
    }
    if (Bytes.crc32Raw(INITIAL_CRC, text, 0, text.length) != checksum) {
      throw new VolumeException("LVM metadata checksum mismatch");
    }
    int n = text.length;
    while (n > 0 && text[n - 1] == 0) {
      n--;
    }
    return new String(text, 0, n, StandardCharsets.UTF_8);
  }

  private static long seqno(String text) throws VolumeException {
    LvmConfig.Section vg = vgSection(LvmConfig.parse(text)).getValue();
    return vg.number("seqno", 0);
  }

  private static Map.Entry<String, LvmConfig.Section> vgSection(LvmConfig.Section root)
      throws VolumeException {
    for (Map.Entry<String, Object> e : root.items.entrySet()) {
      if (e.getValue() instanceof LvmConfig.Section s && s.section("physical_volumes") != null) {
        return Map.entry(e.getKey(), s);
      }
    }
    throw new VolumeException("LVM metadata without a volume group");
  }

  /**
   * The logical volumes of every volume group whose metadata the PVs carry, each group once (the
   * newest metadata). A group whose metadata cannot be trusted yields a warning and no volumes.
   */
  static List<Volume> volumes(String image, List<Pv> pvs, List<String> warnings) {
    Map<String, Pv> byUuid = new HashMap<>();
    for (Pv pv : pvs) {
      byUuid.put(pv.uuid(), pv);
    }
    Map<String, LvmConfig.Section> groups = new LinkedHashMap<>(); // VG id -> newest metadata
    Map<String, String> names = new HashMap<>();
    for (Pv pv : pvs) {
      if (pv.metadata() == null) {
        continue;
      }
      try {
        Map.Entry<String, LvmConfig.Section> vg = vgSection(LvmConfig.parse(pv.metadata()));
        String id = vg.getValue().string("id");
        String key = id == null ? vg.getKey() : id;
        LvmConfig.Section had = groups.get(key);
        if (had == null || had.number("seqno", 0) < vg.getValue().number("seqno", 0)) {
          groups.put(key, vg.getValue());
          names.put(key, vg.getKey());
        }
      } catch (VolumeException e) {
        warnings.add("LVM metadata on " + pv.where() + " ignored: " + e.getMessage());
      }
    }
    List<Volume> out = new ArrayList<>();
    java.util.Set<String> seenNames = new java.util.HashSet<>();
    for (Map.Entry<String, LvmConfig.Section> g : groups.entrySet()) {
      String vgName = names.get(g.getKey());
      try {
        if (!NAME.matcher(vgName).matches()) {
          throw new VolumeException("volume group name '" + vgName + "' is not a valid LVM name");
        }
        if (!seenNames.add(vgName)) {
          throw new VolumeException("another volume group of the same name");
        }
        out.addAll(group(image, vgName, g.getValue(), byUuid));
      } catch (VolumeException | RuntimeException e) {
        warnings.add("LVM volume group " + vgName + " ignored: " + e.getMessage());
      }
    }
    return out;
  }

  private static List<Volume> group(
      String image, String vgName, LvmConfig.Section vg, Map<String, Pv> byUuid)
      throws VolumeException {
    long extentSectors = vg.number("extent_size");
    if (extentSectors <= 0 || extentSectors > 1L << 32) {
      throw new VolumeException("extent size of " + extentSectors + " sectors");
    }
    long extentBytes = extentSectors * 512;
    Map<String, PvInVg> pvs = new HashMap<>();
    for (Map.Entry<String, Object> e : vg.section("physical_volumes").items.entrySet()) {
      if (!(e.getValue() instanceof LvmConfig.Section s)) {
        continue;
      }
      String id = s.string("id");
      Pv found = id == null ? null : byUuid.get(id.replace("-", ""));
      long peStart = s.number("pe_start");
      long peCount = s.number("pe_count", Long.MAX_VALUE / extentBytes);
      if (peStart < 0 || peCount < 0 || peStart > Long.MAX_VALUE / 512) {
        throw new VolumeException(
            "PV " + e.getKey() + " has pe_start " + peStart + ", pe_count " + peCount);
      }
      pvs.put(e.getKey(), new PvInVg(e.getKey(), id, found, peStart * 512, peCount));
    }
    LvmConfig.Section lvs = vg.section("logical_volumes");
    List<Volume> out = new ArrayList<>();
    List<long[]> used = new ArrayList<>(); // image byte ranges of exposed volumes
    if (lvs == null) {
      return out;
    }
    for (Map.Entry<String, Object> e : lvs.items.entrySet()) {
      if (!(e.getValue() instanceof LvmConfig.Section lv)) {
        continue;
      }
      String lvName = e.getKey();
      if (!NAME.matcher(lvName).matches()) {
        throw new VolumeException("logical volume name '" + lvName + "' is not a valid LVM name");
      }
      Volume v = logicalVolume(image, vgName, lvName, lv, extentBytes, pvs);
      for (Extent x : v.extents()) {
        used.add(new long[] {x.offset(), x.end()});
      }
      out.add(v);
    }
    Mbr.overlaps(used, "logical volumes overlap");
    return out;
  }

  private record PvInVg(String key, String id, Pv found, long peStartBytes, long peCount) {}

  private static Volume logicalVolume(
      String image,
      String vg,
      String lv,
      LvmConfig.Section s,
      long extentBytes,
      Map<String, PvInVg> pvs)
      throws VolumeException {
    List<LvmConfig.Section> segs = new ArrayList<>();
    for (Object o : s.items.values()) {
      if (o instanceof LvmConfig.Section seg) {
        segs.add(seg);
        if (segs.size() > MAX_SEGMENTS) {
          throw new VolumeException("LV " + lv + " has more than " + MAX_SEGMENTS + " segments");
        }
      }
    }
    List<long[]> order = new ArrayList<>(); // [start_extent, index]
    for (int i = 0; i < segs.size(); i++) {
      order.add(new long[] {segs.get(i).number("start_extent"), i});
    }
    order.sort((a, b) -> Long.compare(a[0], b[0]));
    java.util.LinkedHashSet<String> types = new java.util.LinkedHashSet<>();
    String reason = null;
    List<Extent> extents = new ArrayList<>();
    long extentsSoFar = 0;
    for (long[] o : order) {
      LvmConfig.Section seg = segs.get((int) o[1]);
      long start = seg.number("start_extent");
      long count = seg.number("extent_count");
      if (start != extentsSoFar
          || count <= 0
          || count > Long.MAX_VALUE / extentBytes - extentsSoFar) {
        throw new VolumeException(
            "LV "
                + lv
                + ": segments do not follow each other (extent "
                + start
                + ", expected "
                + extentsSoFar
                + ")");
      }
      extentsSoFar += count;
      String type = seg.string("type");
      type = type == null ? "?" : type;
      long stripes = seg.number("stripe_count", 0);
      boolean linear = type.equals("striped") && stripes == 1;
      types.add(linear ? "linear" : type.equals("striped") ? "striped" : type);
      if (reason != null) {
        continue;
      }
      if (!linear) {
        reason =
            type.equals("striped")
                ? "striped over " + stripes + " stripes"
                : "segment type " + type;
        continue;
      }
      List<?> st = seg.list("stripes");
      if (st.size() != 2
          || !(st.get(0) instanceof String pvKey)
          || !(st.get(1) instanceof Long pe)) {
        throw new VolumeException("LV " + lv + ": a linear segment without its PV and extent");
      }
      PvInVg pv = pvs.get(pvKey);
      if (pv == null) {
        throw new VolumeException(
            "LV " + lv + " names PV " + pvKey + ", which the group does not have");
      }
      if (pv.found() == null) {
        reason = "its physical volume " + pvKey + " (" + pv.id() + ") is not in this image";
        continue;
      }
      if (pe < 0 || pe > pv.peCount() - count) {
        throw new VolumeException(
            "LV " + lv + ": extents " + pe + "+" + count + " outside PV " + pvKey);
      }
      long from = Math.addExact(pv.peStartBytes(), Math.multiplyExact(pe, extentBytes));
      long len = Math.multiplyExact(count, extentBytes);
      Extent within = pv.found().extent();
      if (from > within.length() - len) {
        throw new VolumeException(
            "LV "
                + lv
                + ": extents "
                + pe
                + "+"
                + count
                + " lie past the end of "
                + pv.found().where());
      }
      long at = within.offset() + from;
      Extent last = extents.isEmpty() ? null : extents.get(extents.size() - 1);
      if (last != null && last.end() == at) {
        extents.set(extents.size() - 1, new Extent(last.offset(), last.length() + len));
      } else {
        extents.add(new Extent(at, len));
      }
    }
    if (reason == null && extents.isEmpty()) {
      reason = "no segments";
    }
    if (reason == null && !s.list("status").contains("VISIBLE")) {
      reason = "hidden (internal) volume";
    }
    String id = s.string("id");
    return new Volume(
        image + "." + vg.replace("-", "--") + "-" + lv.replace("-", "--"),
        Volume.Kind.LOGICAL_VOLUME,
        "lvm",
        String.join("+", types),
        reason == null ? "linear" : String.join("+", types),
        vg + "/" + lv,
        id == null ? "" : id,
        reason == null ? extents : List.of(),
        Math.multiplyExact(extentsSoFar, extentBytes),
        "",
        reason);
  }
}
