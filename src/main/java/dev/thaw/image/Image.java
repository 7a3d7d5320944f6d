package dev.thaw.image;

import dev.thaw.fetch.Chunk;
import dev.thaw.fetch.FetchPipeline;
import dev.thaw.fetch.Priority;
import dev.thaw.format.BlobCodec;
import dev.thaw.format.ChunkIndex;
import dev.thaw.format.Digest;
import java.util.concurrent.CompletableFuture;

/**
 * One disk image of a snapshot: its chunk index bound to the fetch pipeline and the codec of its
 * snapshot. Restore, verify and the FUSE adapter all read images through this class. Immutable
 * and thread-safe.
 */
public final class Image {
  private final String name;
  private final ChunkIndex index;
  private final BlobCodec codec;
  private final FetchPipeline pipeline;

  Image(String name, ChunkIndex index, BlobCodec codec, FetchPipeline pipeline) {
    this.name = name;
    this.index = index;
    this.codec = codec;
    this.pipeline = pipeline;
  }

  /** The archive name, e.g. {@code drive-scsi0.img}. */
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
