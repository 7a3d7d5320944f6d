package dev.thaw.testing;

import dev.thaw.store.ChunkLayout;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.Stores;
import dev.thaw.store.WritableStore;
import java.util.List;

/** Stores as tests open them: each call with its own HTTP client. */
public final class TestStores {
  private TestStores() {}

  public static ChunkStore open(String spec, Stores.Options options) {
    return open(List.of(spec), options);
  }

  public static ChunkStore open(List<String> specs, Stores.Options options) {
    return Stores.access(options).open(specs, ChunkLayout.DATASTORE);
  }

  public static WritableStore openWritable(String spec) throws java.io.IOException {
    return Stores.access(Stores.Options.defaults(4)).openWritable(spec);
  }
}
