package dev.thaw.image;

import dev.thaw.fetch.FetchPipeline;
import dev.thaw.format.CaibxIndex;
import dev.thaw.format.CasyncCodec;
import dev.thaw.format.FormatException;

/**
 * Opens casync blob images: a {@code .caibx} index read from anywhere, whose chunks come from a
 * casync chunk store ({@code .castr}) behind the pipeline. There is no manifest: the index is all
 * there is, and its feature flags choose the chunk id algorithm. Stateless.
 */
public final class CasyncImage {
  private CasyncImage() {}

  /**
   * Parses and checks an index and binds it to {@code pipeline}, whose store must have the casync
   * layout. The image is named after the index file without {@code .caibx}.
   *
   * @param location the index's path or URL (without credentials), for the name and messages
   * @throws FormatException naming {@code location} when the index is malformed
   */
  public static Image open(String location, byte[] index, FetchPipeline pipeline)
      throws FormatException {
    CaibxIndex idx = CaibxIndex.parse(index, location);
    return Image.of(CaibxIndex.imageName(location), idx, CasyncCodec.forIndex(idx), pipeline);
  }
}
