package dev.thaw.image;

import dev.thaw.fetch.Chunk;
import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.Priority;
import dev.thaw.format.ChunkCodec;
import dev.thaw.format.ChunkIndex;
import dev.thaw.format.Digest;
import java.util.concurrent.CompletableFuture;

/**
 * One disk image: its chunk index (fixed or variable chunk sizes) bound to the fetch pipeline and
 * the codec its chunks need (a snapshot's {@link dev.thaw.format.BlobCodec}, or a {@link
 * dev.thaw.format.CasyncCodec}). Restore, verify and the FUSE adapter all read images through this
 * class. Immutable and thread-safe.
 */
public final class Image {
  private final String name;
  private final ChunkIndex index;
  private final ChunkCodec codec;
  private final FetchPipeline pipeline;

  private Image(String name, ChunkIndex index, ChunkCodec codec, FetchPipeline pipeline) {
    this.name = name;
    this.index = index;
    this.codec = codec;
    this.pipeline = pipeline;
  }

  /**
   * Binds an index to a pipeline: the image's chunks are fetched through {@code pipeline} and
   * decoded and verified by {@code codec}.
   *
   * @param name the file name the image is shown and reported as, e.g. {@code drive-scsi0.img}
   */
  public static Image of(String name, ChunkIndex index, ChunkCodec codec, FetchPipeline pipeline) {
    if (name.isEmpty() || name.contains("/")) {
      throw new IllegalArgumentException("bad image name: " + name);
    }
    return new Image(name, index, codec, pipeline);
  }

  /** The image's name, e.g. {@code drive-scsi0.img}. */
  public String name() {
    return name;
  }

  /** Size in bytes. */
  public long size() {
    return index.size();
  }

  public ChunkIndex index() {
    return index;
  }

  public int chunkCount() {
    return index.chunkCount();
  }

  /** Whether chunk {@code i} is all zeros (served without a fetch). */
  public boolean isZero(int i) {
    return FetchPipeline.isZero(index.digest(i), index.length(i), codec);
  }

  /** Chunk {@code i}, verified, at the given priority. */
  public CompletableFuture<Chunk> chunk(int i, Priority priority) {
    return pipeline.fetch(index.digest(i), index.length(i), codec, priority);
  }

  /** The digest of chunk {@code i}. */
  public Digest digest(int i) {
    return index.digest(i);
  }
}
