package dev.thaw.store;

/**
 * How a backup may write into a datastore, next to a Proxmox Backup Server.
 *
 * @param asDatastoreOwner write into a local datastore that a PBS manages anyway, as its owner and
 *     holding PBS's chunk-store lock (root only); never into an S3 datastore a PBS uses
 * @param fullLayout make every {@code .chunks} prefix directory ({@code 0000}…{@code ffff}) as PBS
 *     does, so that a PBS can adopt the local datastore later
 */
public record WriteOptions(boolean asDatastoreOwner, boolean fullLayout) {
  /** Refuse a PBS-managed datastore; make prefix directories as chunks need them. */
  public static final WriteOptions DEFAULT = new WriteOptions(false, false);
}
