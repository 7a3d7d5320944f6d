package dev.thaw.fetch;

import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Bounded retries with exponential backoff and full jitter for transient store faults.
 * Immutable.
 *
 * @param attempts total attempts per fetch, at least 1
 * @param initialBackoff backoff before the second attempt
 * @param maxBackoff cap on one backoff
 */
public record RetryPolicy(int attempts, Duration initialBackoff, Duration maxBackoff) {
  public RetryPolicy {
    if (attempts < 1) {
      throw new IllegalArgumentException("attempts must be at least 1");
    }
  }

  /** Six attempts, backoff from 250 ms doubling up to 8 s (about 16 s of waiting at most). */
  public static RetryPolicy defaults() {
    return new RetryPolicy(6, Duration.ofMillis(250), Duration.ofSeconds(8));
  }

  /** Backoff in ms before attempt {@code attempt} (2 = first retry), jittered in [50%, 100%]. */
  long backoffMillis(int attempt) {
    long base = initialBackoff.toMillis() << Math.min(20, Math.max(0, attempt - 2));
    long capped = Math.min(base, maxBackoff.toMillis());
    return capped / 2 + ThreadLocalRandom.current().nextLong(capped / 2 + 1);
  }
}
