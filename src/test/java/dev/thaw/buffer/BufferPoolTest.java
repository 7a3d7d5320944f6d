package dev.thaw.buffer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class BufferPoolTest {
  /** Fills the buffer's bytes with a stamp only its current holder knows. */
  private static void stamp(Buffer b, long stamp) {
    byte[] a = b.array();
    for (int i = 0; i < b.length(); i++) {
      a[b.offset() + i] = (byte) (stamp + i * 31L);
    }
  }

  private static boolean hasStamp(Buffer b, long stamp) {
    byte[] a = b.array();
    for (int i = 0; i < b.length(); i++) {
      if (a[b.offset() + i] != (byte) (stamp + i * 31L)) {
        return false;
      }
    }
    return true;
  }

  @Test
  void aBufferIsNeverHandedOutWhileSomeoneStillHoldsIt() throws Exception {
    // takers fill each buffer with a stamp of their own and pass a second reference to a
    // reader; both check the stamp as long as they hold it. An array handed out again before
    // its last release is overwritten by its next taker, and one of the two sees foreign bytes.
    BufferPool pool =
        new BufferPool(256 * 1024); // small: arrays go round all the time, some are dropped
    BlockingQueue<Object[]> shared = new ArrayBlockingQueue<>(64);
    List<Throwable> failures = Collections.synchronizedList(new ArrayList<>());
    AtomicLong stamps = new AtomicLong();
    Thread[] threads = new Thread[6];
    for (int t = 0; t < threads.length; t++) {
      int seed = t;
      boolean taker = t % 2 == 0;
      threads[t] =
          new Thread(
              () -> {
                Random rnd = new Random(seed);
                try {
                  for (int k = 0; k < 3000; k++) {
                    if (taker) {
                      Buffer b = pool.take(1 + rnd.nextInt(40_000));
                      long s = stamps.incrementAndGet();
                      b.range(rnd.nextInt(8), b.length() - 8 > 0 ? b.length() - 8 : b.length());
                      stamp(b, s);
                      assertTrue(b.retain());
                      if (!shared.offer(new Object[] {b, s}, 10, TimeUnit.SECONDS)) {
                        throw new AssertionError("no reader took the buffer");
                      }
                      java.util.concurrent.locks.LockSupport.parkNanos(rnd.nextInt(50_000));
                      if (!hasStamp(b, s)) {
                        throw new AssertionError(
                            "a buffer its taker still holds was handed out again");
                      }
                      b.release();
                    } else {
                      Object[] e = shared.poll(10, TimeUnit.SECONDS);
                      if (e == null) {
                        return;
                      }
                      Buffer b = (Buffer) e[0];
                      if (rnd.nextBoolean()) {
                        java.util.concurrent.locks.LockSupport.parkNanos(rnd.nextInt(50_000));
                      }
                      if (!hasStamp(b, (Long) e[1])) {
                        throw new AssertionError(
                            "a buffer its reader still holds was handed out again");
                      }
                      b.release();
                    }
                  }
                } catch (Throwable e) {
                  failures.add(e);
                }
              });
      threads[t].start();
    }
    for (Thread t : threads) {
      t.join();
    }
    assertTrue(failures.isEmpty(), () -> failures.get(0).toString());
    assertTrue(pool.reused() > 1000, "arrays were reused " + pool.reused() + " times");
  }

  @Test
  void theLastReleaseReturnsTheArrayAndAFreedBufferIsDead() {
    BufferPool pool = new BufferPool(1 << 20);
    Buffer a = pool.take(5000);
    assertTrue(a.retain());
    a.release();
    Buffer b = pool.take(5000);
    assertFalse(a.array() == b.array(), "still referenced: not handed out");
    a.release();
    Buffer c = pool.take(4000);
    assertSame(a.array(), c.array(), "released: the next buffer that fits gets it");
    assertFalse(a.retain(), "a freed buffer cannot be taken again");
    assertThrows(IllegalStateException.class, a::release, "nor released again");
    assertThrows(IllegalStateException.class, () -> a.share(1));
    assertEquals(2, pool.taken() - pool.reused(), "two arrays were made");
    b.release();
    c.release();
  }

  @Test
  void freeArraysAreKeptUpToTheBoundAndSmallRequestsDoNotPinLargeArrays() {
    BufferPool pool = new BufferPool(10_000_000);
    List<Buffer> bs = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      bs.add(pool.take(4 << 20));
    }
    bs.forEach(Buffer::release);
    assertTrue(pool.freeBytes() <= 10_000_000, "free bytes " + pool.freeBytes());
    assertEquals(
        2L * BufferPool.capacityFor(4 << 20), pool.freeBytes(), "the two most recent are kept");
    Buffer small = pool.take(64 * 1024);
    assertTrue(small.capacity() < 1 << 20, "a small buffer gets an array of its own size");
    Buffer blob = pool.take((4 << 20) + 44);
    assertTrue(blob.capacity() - blob.length() >= 16, "a blob has room for a tag behind it");
    assertEquals(1, pool.reused());
    small.release();
    blob.release();
  }
}
