package dev.thaw.restore;

import dev.thaw.io.BlockDevices;
import dev.thaw.io.FileChannels;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Where a restore writes: a new or existing regular file, or a block device. Positional reads and
 * writes (FileChannel's positional I/O is safe from several threads; callers keep writers of one
 * range apart); {@link #sync()} makes written data durable.
 */
final class RestoreTarget implements AutoCloseable {
  private static final byte[] ZEROS = new byte[1 << 20];

  private final Path path;
  private final FileChannel channel;
  private final boolean created;
  private final boolean device;
  private final boolean characterDevice;
  private final long size;

  private RestoreTarget(
      Path path,
      FileChannel channel,
      boolean created,
      boolean device,
      boolean characterDevice,
      long size) {
    this.path = path;
    this.channel = channel;
    this.created = created;
    this.device = device;
    this.characterDevice = characterDevice;
    this.size = size;
  }

  /**
   * Opens or creates the target for an image of {@code size} bytes and locks it for this restore
   * alone ({@link ExclusiveUse}; a character device such as {@code /dev/null} is not locked). A new
   * regular file is created empty; {@link #fitToImage} then gives it the image's size. A block
   * device must hold at least {@code size} bytes.
   *
   * @throws IOException naming the target when it cannot be used, or when another restore holds it
   *     (with that process's pid)
   */
  static RestoreTarget open(Path path, long size, Channels channels) throws IOException {
    boolean exists = Files.exists(path);
    boolean device = exists && !Files.isRegularFile(path) && !Files.isDirectory(path);
    if (exists && Files.isDirectory(path)) {
      throw new IOException("target " + path + " is a directory; name a file or block device");
    }
    if (device) {
      long devSize = BlockDevices.size(path);
      if (devSize >= 0 && devSize < size) {
        throw new IOException(
            "target device "
                + path
                + " holds "
                + devSize
                + " bytes, the image needs "
                + size
                + " bytes");
      }
    }
    FileChannel ch;
    try {
      ch =
          exists
              ? FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)
              : FileChannel.open(
                  path,
                  StandardOpenOption.READ,
                  StandardOpenOption.WRITE,
                  StandardOpenOption.CREATE_NEW);
    } catch (AccessDeniedException e) {
      throw new IOException("target " + path + " is not writable (permission denied)");
    } catch (NoSuchFileException e) {
      throw new IOException("cannot create target " + path + ": its directory does not exist");
    } catch (java.nio.file.FileAlreadyExistsException e) {
      throw new IOException(
          "target "
              + path
              + " appeared while this restore started: "
              + ExclusiveUse.holder(path)
              + " created it");
    }
    ch = channels.wrap(path, ch);
    boolean characterDevice = isCharacterDevice(path);
    try {
      if (!characterDevice) {
        ExclusiveUse.lock(ch, path, "target");
      }
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
    return new RestoreTarget(path, ch, !exists, device, characterDevice, size);
  }

  /**
   * Gives a regular file the image's size: a new one is extended sparsely, an existing one cut or
   * extended. Devices keep theirs. Call once the restore has decided to write here.
   */
  void fitToImage() throws IOException {
    if (device) {
      return;
    }
    try {
      if (channel.size() > size) {
        channel.truncate(size);
      } else if (channel.size() < size) {
        channel.write(ByteBuffer.wrap(new byte[1]), size - 1); // extend sparsely
      }
    } catch (IOException e) {
      throw new IOException(
          "cannot size target " + path + " to " + size + " bytes: " + e.getMessage(), e);
    }
  }

  /**
   * Removes a file this restore created and closes it, when the restore decides not to run after
   * all; a file or device that existed before is only closed.
   */
  void discard() throws IOException {
    try {
      if (created) {
        Files.deleteIfExists(path);
      }
    } finally {
      channel.close();
    }
  }

  /** Whether thaw created the file, so that its unwritten ranges read as zeros. */
  boolean created() {
    return created;
  }

  Path path() {
    return path;
  }

  /** Reads {@code length} bytes at {@code offset} into {@code dst} (a live restore's reads). */
  void read(long offset, byte[] dst, int dstOff, int length) throws IOException {
    try {
      FileChannels.read(channel, offset, dst, dstOff, length);
    } catch (java.io.EOFException e) {
      throw new IOException(
          "target " + path + " ends before the image does (" + e.getMessage() + ")", e);
    }
  }

  void write(long offset, byte[] data, int from, int length) throws IOException {
    FileChannels.write(channel, offset, data, from, length);
  }

  void writeZeros(long offset, int length) throws IOException {
    for (int done = 0; done < length; done += ZEROS.length) {
      FileChannels.write(channel, offset + done, ZEROS, 0, Math.min(ZEROS.length, length - done));
    }
  }

  /** Whether {@code path} names a character device, such as /dev/null. */
  static boolean isCharacterDevice(Path path) throws IOException {
    return Files.exists(path)
        && !Files.isRegularFile(path)
        && !Files.isDirectory(path)
        && !BlockDevices.isBlockDevice(path);
  }

  /** Whether {@link #sync()} does anything: not for character devices such as /dev/null. */
  boolean syncs() {
    return !characterDevice;
  }

  /** Makes everything written so far durable (a no-op for character devices such as /dev/null). */
  void sync() throws IOException {
    if (characterDevice) {
      return;
    }
    try {
      channel.force(false);
    } catch (IOException e) {
      throw new IOException("cannot sync target " + path + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void close() throws IOException {
    channel.close();
  }
}
