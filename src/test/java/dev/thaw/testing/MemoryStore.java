package dev.thaw.testing;

import dev.thaw.buffer.Buffer;
import dev.thaw.buffer.BufferPool;
import dev.thaw.format.Digest;
import dev.thaw.store.ChunkStore;
import dev.thaw.store.NotFoundException;
import dev.thaw.store.SnapshotPath;
import dev.thaw.store.WritableStore;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An in-memory datastore for tests, counting reads per chunk and letting a test inject faults
 * ({@link #fault}) that run before every chunk read.
 */
public final class MemoryStore implements WritableStore {
  /** Runs before each chunk read; may throw to simulate a fault, or sleep. */
  public interface Fault {
    void before(Digest d, int attempt) throws IOException;
  }

  private final Map<Digest, byte[]> chunks = new ConcurrentHashMap<>();
  private final Map<String, byte[]> files = new ConcurrentHashMap<>();
  private final Map<String, String> owners = new ConcurrentHashMap<>();
  private final Map<Digest, AtomicInteger> reads = new ConcurrentHashMap<>();
  private final AtomicInteger concurrent = new AtomicInteger();
  private final AtomicInteger maxConcurrent = new AtomicInteger();
  public volatile Fault fault = (d, a) -> {};

  /**
   * A store holding what this one holds now (chunks, files, group owners), with no reads counted
   * and no fault.
   */
  public MemoryStore copy() {
    MemoryStore c = new MemoryStore();
    c.chunks.putAll(chunks);
    c.files.putAll(files);
    c.owners.putAll(owners);
    return c;
  }

  @Override
  public byte[] readChunk(Digest digest, int maxBytes) throws IOException {
    return read(digest, maxBytes).clone();
  }

  /**
   * The stored bytes copied into a buffer of {@code pool}, as a store that knows the size reads.
   */
  @Override
  public Buffer readChunk(Digest digest, int maxBytes, BufferPool pool) throws IOException {
    byte[] b = read(digest, maxBytes);
    Buffer out = pool.take(b.length);
    System.arraycopy(b, 0, out.array(), 0, b.length);
    return out;
  }

  private byte[] read(Digest digest, int maxBytes) throws IOException {
    int attempt = reads.computeIfAbsent(digest, d -> new AtomicInteger()).incrementAndGet();
    int now = concurrent.incrementAndGet();
    maxConcurrent.accumulateAndGet(now, Math::max);
    try {
      fault.before(digest, attempt);
      byte[] b = chunks.get(digest);
      if (b == null) {
        throw new NotFoundException("chunk " + digest.hex() + " not found: mem:" + digest.hex());
      }
      if (b.length > maxBytes) {
        throw new dev.thaw.store.StoreException(
            "chunk "
                + digest.hex()
                + ": "
                + b.length
                + " bytes, more than the "
                + maxBytes
                + " it can have",
            false);
      }
      return b;
    } finally {
      concurrent.decrementAndGet();
    }
  }

  @Override
  public byte[] readFile(SnapshotPath snapshot, String file) throws IOException {
    byte[] b = files.get(snapshot + "/" + file);
    if (b == null) {
      throw new NotFoundException("not found: " + snapshot + "/" + file);
    }
    return b.clone();
  }

  @Override
  public List<SnapshotPath> listSnapshots() {
    TreeSet<SnapshotPath> out = new TreeSet<>();
    for (String k : files.keySet()) {
      out.add(SnapshotPath.parse(k.substring(0, k.lastIndexOf('/'))));
    }
    return new ArrayList<>(out);
  }

  @Override
  public String location(Digest digest) {
    return "mem:" + ChunkStore.chunkPath(digest);
  }

  @Override
  public String location(SnapshotPath snapshot, String file) {
    return "mem:" + snapshot + "/" + file;
  }

  @Override
  public String describe() {
    return "mem:";
  }

  @Override
  public boolean hasChunk(Digest digest) {
    return chunks.containsKey(digest);
  }

  @Override
  public void writeChunk(Digest digest, byte[] blob) {
    chunks.put(digest, blob.clone());
  }

  /** Replaces a stored chunk's bytes (to corrupt it). */
  public void putRaw(Digest digest, byte[] blob) {
    chunks.put(digest, blob);
  }

  public byte[] raw(Digest digest) {
    return chunks.get(digest);
  }

  public void remove(Digest digest) {
    chunks.remove(digest);
  }

  public int chunkCount() {
    return chunks.size();
  }

  /** How often a chunk was read. */
  public int reads(Digest d) {
    AtomicInteger n = reads.get(d);
    return n == null ? 0 : n.get();
  }

  public int totalReads() {
    return reads.values().stream().mapToInt(AtomicInteger::get).sum();
  }

  public int maxConcurrentReads() {
    return maxConcurrent.get();
  }

  public void putFile(String key, byte[] data) {
    files.put(key, data);
  }

  public byte[] file(String key) {
    return files.get(key);
  }

  @Override
  public boolean ensureGroupOwner(SnapshotPath snapshot, String authId) {
    return owners.putIfAbsent(snapshot.group(), authId) == null;
  }

  /** The owner of a group ({@code vm/100}), or null. */
  public String owner(String group) {
    return owners.get(group);
  }

  @Override
  public SnapshotWriter createSnapshot(SnapshotPath snapshot) {
    Map<String, byte[]> pending = new ConcurrentHashMap<>();
    return new SnapshotWriter() {
      @Override
      public void writeFile(String name, byte[] data) {
        pending.put(name, data.clone());
      }

      @Override
      public void commit() throws IOException {
        for (String k : files.keySet()) {
          if (k.startsWith(snapshot + "/")) {
            throw new java.nio.file.FileAlreadyExistsException(snapshot.toString());
          }
        }
        pending.forEach((k, v) -> files.put(snapshot + "/" + k, v));
      }

      @Override
      public void close() {}
    };
  }

  @Override
  public void close() {}
}
