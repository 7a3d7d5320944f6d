package dev.thaw.restore;

import java.io.IOException;
import java.util.BitSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * A restore's checkpoints, made on a thread of their own so that the restore goes on fetching and
 * writing while the target syncs (a sync of a few seconds' writes can take as long again on a slow
 * disk): each syncs the target, then records in the state file the chunks that were written before
 * the sync began. One runs at a time.
 *
 * <p>Only the restoring thread calls these methods. The state file is the checkpoint thread's from
 * {@link #start} until the checkpoint ends, which {@link #poll} sees and {@link #finish} waits for;
 * the restoring thread meanwhile only marks chunks present.
 */
final class Checkpoints {
  private final RestoreTarget target;
  private final RestoreState state;
  private final ExecutorService thread;
  private Future<?> running;

  Checkpoints(RestoreTarget target, RestoreState state) {
    this.target = target;
    this.state = state;
    this.thread =
        Executors.newSingleThreadExecutor(
            r -> {
              Thread t = new Thread(r, "thaw-checkpoint");
              t.setDaemon(true);
              return t;
            });
  }

  /** Whether a checkpoint has started and not yet ended. */
  boolean running() {
    return running != null && !running.isDone();
  }

  /** Starts a checkpoint of the chunks marked present so far; none may be {@link #running()}. */
  void start() {
    if (running()) {
      throw new IllegalStateException("a checkpoint is running");
    }
    BitSet written = state.snapshot(); // before the sync: what the sync covers
    running =
        thread.submit(
            () -> {
              target.sync();
              state.save(written);
              return null;
            });
  }

  /** The failure of a checkpoint that has ended since the last call, or null. Does not wait. */
  IOException poll() {
    return running != null && running.isDone() ? outcome() : null;
  }

  /**
   * Waits for the running checkpoint, even when interrupted (the state file must not be closed
   * under it), and stops the thread. Returns that checkpoint's failure, or null.
   */
  IOException finish() {
    thread.shutdown();
    return running == null ? null : outcome();
  }

  private IOException outcome() {
    Future<?> f = running;
    running = null;
    boolean interrupted = false;
    try {
      while (true) {
        try {
          f.get();
          return null;
        } catch (InterruptedException e) {
          interrupted = true;
        } catch (ExecutionException e) {
          Throwable c = e.getCause();
          return c instanceof IOException io ? io : new IOException(String.valueOf(c), c);
        }
      }
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
