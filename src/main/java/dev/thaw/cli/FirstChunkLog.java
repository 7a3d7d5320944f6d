package dev.thaw.cli;

import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;
import dev.thaw.format.Digest;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.ForwardingChunkStore;
import java.io.IOException;
import java.io.PrintStream;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A store that says on stderr, once, how long after the command started its first chunk was asked
 * for: the start-up cost a user waits through before any work begins. Used with {@code THAW_DEBUG};
 * the start is the launcher's ({@code -Dthaw.launched}, epoch seconds), else the JVM process's. The
 * line gives the JVM's CPU seconds so far as well. Thread-safe when the store is.
 */
final class FirstChunkLog extends ForwardingChunkStore {
  private final long startMicros;
  private final PrintStream err;
  private final AtomicBoolean said = new AtomicBoolean();

  FirstChunkLog(ChunkStore store, long startMicros, PrintStream err) {
    super(store);
    this.startMicros = startMicros;
    this.err = err;
  }

  /** {@code store}, logging its first chunk request when {@code env} has THAW_DEBUG. */
  static ChunkStore wrap(ChunkStore store, java.util.Map<String, String> env) {
    if (env.get("THAW_DEBUG") == null) {
      return store;
    }
    return new FirstChunkLog(store, startMicros(System.getProperty("thaw.launched")), System.err);
  }

  /** The launcher's start ("1764480000.123456"), else the process's, in epoch microseconds. */
  static long startMicros(String launched) {
    if (launched != null && launched.matches("[0-9]+(\\.[0-9]{1,9})?")) {
      java.math.BigDecimal s = new java.math.BigDecimal(launched);
      return s.movePointRight(6).longValue();
    }
    return ProcessHandle.current()
        .info()
        .startInstant()
        .map(i -> i.getEpochSecond() * 1_000_000 + i.getNano() / 1000)
        .orElse(System.currentTimeMillis() * 1000);
  }

  private void sayOnce() {
    if (said.compareAndSet(false, true)) {
      java.time.Instant now = java.time.Instant.now();
      long micros = now.getEpochSecond() * 1_000_000 + now.getNano() / 1000 - startMicros;
      // CPU time too: on a busy machine the wall time says more about the neighbours than thaw
      double cpu =
          ProcessHandle.current()
              .info()
              .totalCpuDuration()
              .map(d -> d.toNanos() / 1e9)
              .orElse(-1.0);
      err.printf(
          Locale.ROOT,
          "thaw: debug: first chunk requested %.3f s after the command started"
              + " (JVM CPU so far %.2f s)%n",
          micros / 1e6,
          cpu);
    }
  }

  @Override
  public byte[] readChunk(Digest digest, int maxBytes) throws IOException {
    sayOnce();
    return super.readChunk(digest, maxBytes);
  }

  @Override
  public Buffer readChunk(Digest digest, int maxBytes, BufferPool pool) throws IOException {
    sayOnce();
    return super.readChunk(digest, maxBytes, pool);
  }
}
