package dev.thaw.volume;

import java.io.IOException;

/**
 * Recognises what a volume holds from its signatures, with blkid's names: {@code ext2}, {@code
 * ext3}, {@code ext4}, {@code xfs}, {@code btrfs}, {@code ntfs}, {@code exfat}, {@code vfat},
 * {@code swap}, {@code LVM2_member}, {@code crypto_LUKS}; empty when none matches. Reads at most a
 * few small blocks from the first 68 KiB.
 */
public final class Filesystems {
  private Filesystems() {}

  /** What {@code v} holds, as above; empty when nothing is recognised. */
  public static String probe(ByteSource v) throws IOException {
    long size = v.size();
    if (size < 4096) {
      return "";
    }
    byte[] head = v.read(0, 4096);
    if (Bytes.ascii(head, 0, "XFSB")) {
      return "xfs";
    }
    if (Bytes.ascii(head, 0, "LUKS\u00ba\u00be")) {
      return "crypto_LUKS";
    }
    if (Bytes.ascii(head, 3, "NTFS    ")) {
      return "ntfs";
    }
    if (Bytes.ascii(head, 3, "EXFAT   ")) {
      return "exfat";
    }
    for (int s = 0; s < 4; s++) {
      if (Bytes.ascii(head, s * 512, "LABELONE") && Bytes.ascii(head, s * 512 + 24, "LVM2 001")) {
        return "LVM2_member";
      }
    }
    if (Bytes.u16(head, 1024 + 56) == 0xef53) {
      long compat = Bytes.u32(head, 1024 + 92);
      long incompat = Bytes.u32(head, 1024 + 96);
      long roCompat = Bytes.u32(head, 1024 + 100);
      // features ext3 lacks (extents, 64bit, flex_bg, huge_file, metadata_csum...) make it ext4
      if ((incompat & ~0x16L) != 0 || (roCompat & ~0x7L) != 0) {
        return "ext4";
      }
      return (compat & 0x4) != 0 ? "ext3" : "ext2";
    }
    if (Bytes.ascii(head, 4086, "SWAPSPACE2") || Bytes.ascii(head, 4086, "SWAP-SPACE")) {
      return "swap";
    }
    if ((head[510] & 0xff) == 0x55
        && (head[511] & 0xff) == 0xaa
        && (Bytes.ascii(head, 54, "FAT1") || Bytes.ascii(head, 82, "FAT32"))) {
      return "vfat";
    }
    if (size >= 0x10040 + 8 && Bytes.ascii(v.read(0x10040, 8), 0, "_BHRfS_M")) {
      return "btrfs";
    }
    return "";
  }
}
