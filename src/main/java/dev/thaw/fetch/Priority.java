package dev.thaw.fetch;

/** Fetch priority classes, highest first: a waiting demand read is never queued behind the rest. */
public enum Priority {
  /** A reader is blocked on this chunk now. */
  DEMAND,
  /** A sequential reader will want this chunk soon. */
  READ_AHEAD,
  /** Restore and verify: throughput, not latency. */
  BACKGROUND
}
