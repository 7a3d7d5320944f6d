package dev.thaw.store;

import dev.thaw.format.Digest;

/** Where a chunk lives relative to a store's root. */
public enum ChunkLayout {
  /** Proxmox Backup datastore: {@code .chunks/XXXX/<hex>}. */
  DATASTORE {
    @Override
    public String path(Digest d) {
      String hex = d.hex();
      return ".chunks/" + hex.substring(0, 4) + "/" + hex;
    }
  },
  /** casync chunk store ({@code .castr}): {@code XXXX/<hex>.cacnk}. */
  CASYNC {
    @Override
    public String path(Digest d) {
      String hex = d.hex();
      return hex.substring(0, 4) + "/" + hex + ".cacnk";
    }
  };

  /** The chunk's path relative to the store root. */
  public abstract String path(Digest d);
}
