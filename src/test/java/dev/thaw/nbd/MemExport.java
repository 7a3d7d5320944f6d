package dev.thaw.nbd;

import dev.thaw.image.ImageReader;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/** An export over a byte array, whose reads can be held back and counted (tests only). */
final class MemExport implements Export {
  final byte[] data;
  final boolean writable;
  volatile CountDownLatch gate = new CountDownLatch(0);
  final AtomicInteger reading = new AtomicInteger();
  final AtomicInteger maxReading = new AtomicInteger();
  final AtomicInteger flushes = new AtomicInteger();

  MemExport(byte[] data, boolean writable) {
    this.data = data;
    this.writable = writable;
  }

  @Override
  public String name() {
    return writable ? "rw" : "ro";
  }

  @Override
  public long size() {
    return data.length;
  }

  @Override
  public boolean writable() {
    return writable;
  }

  @Override
  public String description() {
    return "test " + name();
  }

  @Override
  public Handle open() {
    return new Handle() {
      @Override
      public void read(long offset, int length, ImageReader.Sink sink) throws IOException {
        maxReading.accumulateAndGet(reading.incrementAndGet(), Math::max);
        try {
          if (!gate.await(30, TimeUnit.SECONDS)) {
            throw new IOException("gate never opened");
          }
          sink.accept(0, data, (int) offset, length);
        } catch (InterruptedException e) {
          throw new IOException(e);
        } finally {
          reading.decrementAndGet();
        }
      }

      @Override
      public void write(long offset, byte[] src, int from, int length) {
        System.arraycopy(src, from, data, (int) offset, length);
      }

      @Override
      public void writeZeros(long offset, long length) {
        java.util.Arrays.fill(data, (int) offset, (int) (offset + length), (byte) 0);
      }

      @Override
      public void discard(long offset, long length) {}

      @Override
      public void flush() {
        flushes.incrementAndGet();
      }

      @Override
      public List<Extent> extents(long offset, long length) {
        return List.of(new Extent(data.length - offset, false));
      }

      @Override
      public void close() {}
    };
  }
}
