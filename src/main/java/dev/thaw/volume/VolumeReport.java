package dev.thaw.volume;

import java.util.List;

/**
 * What {@link VolumeMap} found in one image, as a plain record for JSON: the one shape of {@code
 * thaw partitions --output json} and of each image's {@code volumes} in a mount's or server's
 * status document. Immutable.
 *
 * @param image the image's file name
 * @param size the image's size in bytes
 * @param table as {@link VolumeMap#table()}
 * @param filesystem as {@link VolumeMap#filesystem()}
 * @param volumes every partition and logical volume, exposed or not
 * @param warnings as {@link VolumeMap#warnings()}
 */
public record VolumeReport(
    String image,
    long size,
    String table,
    String filesystem,
    List<Item> volumes,
    List<String> warnings) {
  public VolumeReport {
    volumes = List.copyOf(volumes);
    warnings = List.copyOf(warnings);
  }

  /**
   * One volume, as {@link Volume} has it.
   *
   * @param kind {@code partition} or {@code logical-volume}
   * @param offset where it starts in the image, -1 when it is not exposed
   * @param reason why it is not exposed, or null when it is
   */
  public record Item(
      String name,
      String kind,
      String scheme,
      String typeId,
      String type,
      String label,
      String uuid,
      long offset,
      long size,
      String filesystem,
      boolean exposed,
      String reason,
      List<Extent> extents) {
    public Item {
      extents = List.copyOf(extents);
    }
  }

  public static VolumeReport of(String image, long size, VolumeMap map) {
    List<Item> items =
        map.volumes().stream()
            .map(
                v ->
                    new Item(
                        v.name(),
                        v.kind() == Volume.Kind.PARTITION ? "partition" : "logical-volume",
                        v.scheme(),
                        v.typeId(),
                        v.type(),
                        v.label(),
                        v.uuid(),
                        v.offset(),
                        v.size(),
                        v.filesystem(),
                        v.exposed(),
                        v.notExposed(),
                        v.extents()))
            .toList();
    return new VolumeReport(image, size, map.table(), map.filesystem(), items, map.warnings());
  }
}
