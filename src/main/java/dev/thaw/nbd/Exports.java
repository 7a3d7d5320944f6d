package dev.thaw.nbd;

import dev.thaw.format.ChunkIndex;
import dev.thaw.image.Image;
import dev.thaw.image.ImageReader;
import dev.thaw.restore.LiveRestore;
import dev.thaw.volume.Volume;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntPredicate;

/**
 * Exports over thaw's images: read-only over an {@link ImageReader}, writable over a {@link
 * LiveRestore}. The cache, read-ahead, verification, read timeout and the live restore's rules all
 * stay in those classes; these adapters only map calls. Stateless.
 */
public final class Exports {
  /**
   * How far out of order a connection's reads may reach its reader: a client keeps many requests in
   * flight (nbdcopy 64 of 256 KiB, qemu 16 of up to 2 MiB) and the workers start them in about that
   * order.
   */
  private static final long REORDER = 32L << 20;

  private Exports() {}

  /**
   * A read-only export of {@code reader}'s image. Each connection reads through its own {@link
   * ImageReader.Handle}, so that each sequential stream gets read-ahead. Zero chunks are holes in
   * the allocation map.
   */
  public static Export readOnly(ImageReader reader) {
    return new ImageExport(reader, null, "read-only");
  }

  /**
   * A writable export of {@code live}'s image, read through {@code reader} (the reader {@code live}
   * was opened with). Chunks not yet in the target that are zero in the backup are holes in the
   * allocation map.
   *
   * @param description where the writes go, e.g. {@code live restore into /var/lib/vm/a.img}
   */
  public static Export writable(ImageReader reader, LiveRestore live, String description) {
    if (reader.image() != live.image()) {
      throw new IllegalArgumentException("the reader and the live restore are of different images");
    }
    return new ImageExport(reader, live, description);
  }

  /**
   * A read-only export of a partition or logical volume of {@code reader}'s image: reads are offset
   * reads of the image through {@link Volume#read}; the allocation map is the image's, mapped
   * through the volume's extents.
   */
  public static Export volume(ImageReader reader, Volume volume) {
    if (!volume.exposed()) {
      throw new IllegalArgumentException(volume.name() + " is not exposed: " + volume.notExposed());
    }
    return new Export() {
      @Override
      public String name() {
        return volume.name();
      }

      @Override
      public long size() {
        return volume.size();
      }

      @Override
      public boolean writable() {
        return false;
      }

      @Override
      public String description() {
        return "read-only "
            + (volume.kind() == Volume.Kind.PARTITION ? "partition" : "logical volume")
            + " of "
            + reader.image().name();
      }

      @Override
      public Handle open() {
        ImageReader.Handle h = reader.open(REORDER);
        Image image = reader.image();
        return new Handle() {
          @Override
          public void read(long offset, int length, ImageReader.Sink sink) throws IOException {
            int n = volume.read(h, offset, length, sink);
            requireWhole(volume.name(), offset, length, n);
          }

          @Override
          public void write(long offset, byte[] data, int from, int length) throws IOException {
            throw new IOException(volume.name() + " is read-only");
          }

          @Override
          public void writeZeros(long offset, long length) throws IOException {
            throw new IOException(volume.name() + " is read-only");
          }

          @Override
          public void discard(long offset, long length) throws IOException {
            throw new IOException(volume.name() + " is read-only");
          }

          @Override
          public void flush() {}

          @Override
          public List<Extent> extents(long offset, long length) {
            List<Extent> out = new ArrayList<>();
            long end = Math.min(volume.size(), offset + length);
            long start = 0; // of the volume extent within the volume
            for (dev.thaw.volume.Extent e : volume.extents()) {
              long from = Math.max(offset, start);
              long to = Math.min(end, start + e.length());
              if (from < to) { // the image's map of this piece, cut to it
                long left = to - from;
                for (Extent x :
                    Exports.extents(
                        image.index(), e.offset() + from - start, left, image::isZero)) {
                  long n = Math.min(left, x.length());
                  if (!out.isEmpty() && out.get(out.size() - 1).hole() == x.hole()) {
                    Extent last = out.remove(out.size() - 1);
                    out.add(new Extent(last.length() + n, x.hole()));
                  } else {
                    out.add(new Extent(n, x.hole()));
                  }
                  left -= n;
                  if (left == 0) {
                    break;
                  }
                }
              }
              start += e.length();
            }
            return out;
          }

          @Override
          public void close() {
            h.close();
          }
        };
      }
    };
  }

  /** An image's export: read-only when {@code live} is null. */
  private static final class ImageExport implements Export {
    private final ImageReader reader;
    private final LiveRestore live;
    private final String description;

    ImageExport(ImageReader reader, LiveRestore live, String description) {
      this.reader = reader;
      this.live = live;
      this.description = description;
    }

    @Override
    public String name() {
      return reader.image().name();
    }

    @Override
    public long size() {
      return reader.image().size();
    }

    @Override
    public boolean writable() {
      return live != null;
    }

    @Override
    public String description() {
      return description;
    }

    @Override
    public Handle open() {
      ImageReader.Handle h = reader.open(REORDER);
      Image image = reader.image();
      IntPredicate hole = live == null ? image::isZero : i -> image.isZero(i) && !live.isPresent(i);
      return new Handle() {
        @Override
        public void read(long offset, int length, ImageReader.Sink sink) throws IOException {
          int n = live == null ? h.read(offset, length, sink) : live.read(h, offset, length, sink);
          requireWhole(image.name(), offset, length, n);
        }

        @Override
        public void write(long offset, byte[] data, int from, int length) throws IOException {
          live().write(offset, data, from, length);
        }

        @Override
        public void writeZeros(long offset, long length) throws IOException {
          live().writeZeros(offset, length);
        }

        @Override
        public void discard(long offset, long length) throws IOException {
          live().discard(offset, length);
        }

        @Override
        public void flush() throws IOException {
          if (live != null) {
            live.flush();
          }
        }

        @Override
        public List<Extent> extents(long offset, long length) {
          return Exports.extents(image.index(), offset, length, hole);
        }

        @Override
        public void close() {
          h.close();
        }
      };
    }

    private LiveRestore live() throws IOException {
      if (live == null) {
        throw new IOException(name() + " is read-only");
      }
      return live;
    }
  }

  /**
   * The allocation map of {@code length} bytes at {@code offset}, chunk by chunk, runs of the same
   * kind merged; the last extent reaches to the end of its chunk.
   */
  static List<Export.Extent> extents(ChunkIndex idx, long offset, long length, IntPredicate hole) {
    List<Export.Extent> out = new ArrayList<>();
    long end = Math.min(idx.size(), offset + length);
    long runStart = offset;
    boolean runHole = false;
    for (long pos = offset; pos < end; ) {
      int i = idx.chunkAt(pos);
      boolean h = hole.test(i);
      if (pos > runStart && h != runHole) {
        out.add(new Export.Extent(pos - runStart, runHole));
        runStart = pos;
      }
      runHole = h;
      pos = idx.end(i);
      if (pos >= end) {
        out.add(new Export.Extent(pos - runStart, runHole));
      }
    }
    return out;
  }

  /** NBD answers a read whole or with an error: a short read of an export is an I/O error. */
  private static void requireWhole(String name, long offset, int length, int n) throws IOException {
    if (n != length) {
      throw new IOException(
          "short read of " + name + " at " + offset + ": " + n + " of " + length + " bytes");
    }
  }
}
