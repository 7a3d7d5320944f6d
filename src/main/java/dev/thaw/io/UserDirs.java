package dev.thaw.io;

import java.nio.file.Path;

/** Where thaw keeps per-user files that belong to no target: device state files, mount logs. */
public final class UserDirs {
  private UserDirs() {}

  /**
   * {@code $XDG_STATE_HOME/thaw}, by default {@code $HOME/.local/state/thaw} (the XDG base
   * directory rules; Java's {@code user.home} ignores {@code HOME}, so it is the last resort).
   */
  public static Path state() {
    String xdg = System.getenv("XDG_STATE_HOME");
    if (xdg != null && xdg.startsWith("/")) {
      return Path.of(xdg, "thaw");
    }
    String home = System.getenv("HOME");
    if (home == null || !home.startsWith("/")) {
      home = System.getProperty("user.home");
    }
    return Path.of(home, ".local", "state", "thaw");
  }
}
