package dev.thaw.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Facts about block devices that Java's file API does not give (their size). */
public final class BlockDevices {
  private static final int S_IFMT = 0170000;
  private static final int S_IFBLK = 0060000;

  private BlockDevices() {}

  /** Whether {@code p} (after links) is a block device. */
  public static boolean isBlockDevice(Path p) throws IOException {
    Object mode = Files.getAttribute(p.toRealPath(), "unix:mode");
    return mode instanceof Integer m && (m & S_IFMT) == S_IFBLK;
  }

  /**
   * Size in bytes of a block device, read from sysfs; -1 when {@code p} is not a block device or
   * sysfs does not say.
   */
  public static long size(Path p) throws IOException {
    Path real = p.toRealPath();
    if (!isBlockDevice(real)) {
      return -1;
    }
    Object rdev = Files.getAttribute(real, "unix:rdev");
    if (!(rdev instanceof Long r)) {
      return -1;
    }
    long major = ((r >>> 8) & 0xfff) | ((r >>> 32) & ~0xfffL);
    long minor = (r & 0xff) | ((r >>> 12) & ~0xffL);
    try {
      return Long.parseLong(
              Files.readString(Path.of("/sys/dev/block/" + major + ":" + minor + "/size")).trim())
          * 512;
    } catch (IOException | NumberFormatException e) {
      return -1;
    }
  }
}
