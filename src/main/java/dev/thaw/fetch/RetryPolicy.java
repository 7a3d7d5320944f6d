package dev.thaw.fetch;

import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Bounded retries with exponential backoff and jitter for transient store faults, bounded both in
 * count and in time: a fetch is retried while fewer than {@code attempts} attempts were made
 * <em>and</em> the next attempt would start within {@code window} of the first one. So a store that
 * is unreachable for a while and then back is ridden out, and one that stays down ends in an error
 * after about {@code window} plus one attempt's own timeout. Immutable.
 *
 * @param attempts total attempts per fetch, at least 1
 * @param initialBackoff backoff before the second attempt
 * @param maxBackoff cap on one backoff
 * @param window no attempt starts later than this after the first; zero means no retries
 */
public record RetryPolicy(
    int attempts, Duration initialBackoff, Duration maxBackoff, Duration window) {
  /** The window of a policy bounded by count only. */
  private static final Duration UNBOUNDED = Duration.ofDays(365);

  public RetryPolicy {
    if (attempts < 1) {
      throw new IllegalArgumentException("attempts must be at least 1");
    }
    if (initialBackoff.isNegative() || maxBackoff.isNegative() || window.isNegative()) {
      throw new IllegalArgumentException("backoff and window must not be negative");
    }
  }

  /** A policy bounded by count only. */
  public RetryPolicy(int attempts, Duration initialBackoff, Duration maxBackoff) {
    this(attempts, initialBackoff, maxBackoff, UNBOUNDED);
  }

  /**
   * Retries for up to 60 s (at most 40 attempts), backoff from 250 ms doubling up to 4 s, so that a
   * store back after an outage is noticed within about 4 s.
   */
  public static RetryPolicy defaults() {
    return new RetryPolicy(
        40, Duration.ofMillis(250), Duration.ofSeconds(4), Duration.ofSeconds(60));
  }

  /**
   * This policy with another time window. The count bound grows with a longer window, so that the
   * window, not the count, ends the retries.
   */
  public RetryPolicy withWindow(Duration window) {
    long shortestBackoff = Math.max(1, maxBackoff.toMillis() / 2);
    long needed = Math.min(Integer.MAX_VALUE, window.toMillis() / shortestBackoff + 8);
    return new RetryPolicy((int) Math.max(attempts, needed), initialBackoff, maxBackoff, window);
  }

  /** One attempt of an operation on a store. */
  @FunctionalInterface
  public interface Attempt<T> {
    T run() throws java.io.IOException;
  }

  /**
   * Runs {@code op} until it succeeds, fails for good (a {@link dev.thaw.store.StoreException} that
   * is not retryable, such as not found or access denied), or this policy allows no other attempt;
   * the last failure then carries how long thaw tried. For store operations outside the fetch
   * pipeline (a backup's chunk uploads); the pipeline's own loop adds its counters.
   */
  public <T> T call(Attempt<T> op) throws java.io.IOException, InterruptedException {
    return call(op, () -> {}, () -> false);
  }

  /**
   * {@link #call(Attempt)}, telling {@code onRetry} before each retry and giving up early once
   * {@code stop} says so (the caller is closing).
   */
  public <T> T call(Attempt<T> op, Runnable onRetry, java.util.function.BooleanSupplier stop)
      throws java.io.IOException, InterruptedException {
    long first = System.nanoTime();
    for (int attempt = 1; ; attempt++) {
      java.io.IOException fault;
      try {
        return op.run();
      } catch (dev.thaw.store.StoreException e) {
        if (!e.retryable()) {
          throw e;
        }
        fault = e;
      } catch (java.io.IOException e) {
        fault = e;
      }
      long elapsed = System.nanoTime() - first;
      long backoff = backoffMillis(attempt + 1);
      if (stop.getAsBoolean() || !allowsAnother(attempt, elapsed, backoff)) {
        if (attempt == 1) {
          throw fault;
        }
        throw new dev.thaw.store.StoreException(
            fault.getMessage()
                + String.format(
                    java.util.Locale.ROOT,
                    " (gave up after %d attempts in %.1f s)",
                    attempt,
                    elapsed / 1e9),
            false,
            fault);
      }
      onRetry.run();
      Thread.sleep(backoff);
    }
  }

  /**
   * {@code store} with its snapshot files and listings read under this policy (chunk reads
   * unchanged: the fetch pipeline retries them).
   */
  public dev.thaw.store.ChunkStore retryingFileReads(dev.thaw.store.ChunkStore store) {
    return new RetryingFiles(store, this);
  }

  /** Backoff in ms before attempt {@code attempt} (2 = first retry), jittered in [50%, 100%]. */
  long backoffMillis(int attempt) {
    long base = initialBackoff.toMillis() << Math.min(20, Math.max(0, attempt - 2));
    long capped = Math.min(base, maxBackoff.toMillis());
    return capped / 2 + ThreadLocalRandom.current().nextLong(capped / 2 + 1);
  }

  /**
   * Whether another attempt may start after {@code made} attempts, {@code elapsedNanos} after the
   * first began, once a backoff of {@code backoffMillis} has passed.
   */
  boolean allowsAnother(int made, long elapsedNanos, long backoffMillis) {
    return made < attempts
        && Duration.ofNanos(elapsedNanos).plusMillis(backoffMillis).compareTo(window) < 0;
  }
}
