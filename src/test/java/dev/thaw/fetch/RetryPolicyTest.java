package dev.thaw.fetch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class RetryPolicyTest {
  private static final long SECOND = 1_000_000_000L;

  @Test
  void retriesWhileBothCountAndWindowAllow() {
    RetryPolicy p =
        new RetryPolicy(5, Duration.ofMillis(100), Duration.ofSeconds(1), Duration.ofSeconds(10));
    assertTrue(p.allowsAnother(1, 0, 100));
    assertTrue(p.allowsAnother(4, 8 * SECOND, 1000));
    assertFalse(p.allowsAnother(5, SECOND, 100), "count bound");
    assertFalse(
        p.allowsAnother(2, 9 * SECOND + SECOND / 2, 600),
        "the attempt would start past the window");
    assertFalse(
        p.withWindow(Duration.ZERO).allowsAnother(1, 0, 0), "a zero window means no retries");
    assertTrue(
        new RetryPolicy(3, Duration.ofMillis(1), Duration.ofMillis(1))
            .allowsAnother(2, 3600 * SECOND, 1),
        "a count-only policy has no time bound");
  }

  @Test
  void aLongerWindowRaisesTheCountSoThatTheWindowEndsTheRetries() {
    RetryPolicy d = RetryPolicy.defaults();
    assertEquals(Duration.ofSeconds(60), d.window());
    RetryPolicy tenMinutes = d.withWindow(Duration.ofMinutes(10));
    // backoff is at least half the cap (2 s) once ramped up: 300 retries fill 10 minutes
    assertTrue(tenMinutes.attempts() >= 300, "attempts " + tenMinutes.attempts());
    assertEquals(d.attempts(), d.withWindow(Duration.ofSeconds(5)).attempts());
  }

  @Test
  void backoffDoublesUpToTheCapWithJitter() {
    RetryPolicy p = RetryPolicy.defaults();
    for (int i = 0; i < 200; i++) {
      long first = p.backoffMillis(2);
      assertTrue(first >= 125 && first <= 250, "first backoff " + first);
      long late = p.backoffMillis(30);
      assertTrue(late >= 2000 && late <= 4000, "capped backoff " + late);
    }
  }

  @Test
  void callRetriesTransientFaultsAndStopsAtLastingOnes() throws Exception {
    RetryPolicy p =
        new RetryPolicy(5, Duration.ofMillis(1), Duration.ofMillis(2), Duration.ofSeconds(5));
    java.util.concurrent.atomic.AtomicInteger n = new java.util.concurrent.atomic.AtomicInteger();
    assertEquals(
        "ok",
        p.call(
            () -> {
              if (n.incrementAndGet() < 3) {
                throw new dev.thaw.store.StoreException("HTTP 503 SlowDown", true);
              }
              return "ok";
            }));
    assertEquals(3, n.get());
    n.set(0);
    org.junit.jupiter.api.Assertions.assertThrows(
        dev.thaw.store.NotFoundException.class,
        () ->
            p.call(
                () -> {
                  n.incrementAndGet();
                  throw new dev.thaw.store.NotFoundException("gone");
                }));
    assertEquals(1, n.get(), "not found is not retried");
    java.io.IOException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            java.io.IOException.class,
            () ->
                p.call(
                    () -> {
                      throw new java.io.IOException("connection reset");
                    }));
    assertTrue(
        e.getMessage().contains("connection reset")
            && e.getMessage().contains("gave up after 5 attempts"),
        e.getMessage());
  }
}
