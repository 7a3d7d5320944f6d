package dev.thaw.nbd;

import static dev.thaw.nbd.Protocol.*;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;

/**
 * One client: the handshake, then the transmission phase. This connection's thread reads requests
 * (and write payloads) in order and hands each to the server's worker pool; workers answer in any
 * order, each reply written whole under the socket's write lock. At most {@value #MAX_IN_FLIGHT}
 * requests of one connection are in flight; reading waits beyond that. {@code NBD_CMD_DISC} or the
 * end of the stream ends the connection once its requests are answered.
 */
final class Connection implements Runnable {
  static final int MAX_IN_FLIGHT = 64;

  /** The longest extent a block status descriptor can state, a multiple of 512 below 2^32. */
  private static final long MAX_EXTENT = 0xffff_fe00L;

  /** Extents in one block status reply at most (the protocol's recommended bound). */
  private static final int MAX_EXTENTS = 1 << 20;

  private final NbdServer server;
  private final Wire wire;
  private final long id;
  private final Semaphore inFlight = new Semaphore(MAX_IN_FLIGHT);
  private Handshake.Negotiated session;
  private Export.Handle handle;

  private record Request(
      int flags, int type, long cookie, long offset, long length, byte[] payload, int reserved) {}

  /** A request refused before it reached the export: answered with {@code errno}, not logged. */
  private static final class Refusal extends Exception {
    final int errno;

    Refusal(int errno, String message) {
      super(message, null, false, false);
      this.errno = errno;
    }
  }

  Connection(NbdServer server, Wire wire, long id) {
    this.server = server;
    this.wire = wire;
    this.id = id;
  }

  @Override
  public void run() {
    try {
      session = new Handshake(wire, server.exports(), server::shuttingDown).run();
      if (session == null) {
        return;
      }
      Export e = session.export();
      server.log(
          "connection "
              + id
              + ": "
              + e.name()
              + " ("
              + (e.writable() ? "writable" : "read-only")
              + (session.structured() ? ", structured replies" : "")
              + (session.allocation() ? ", base:allocation" : "")
              + ")");
      handle = e.open();
      try {
        transmit();
      } finally {
        drain();
        handle.close();
      }
    } catch (EOFException | ClosedChannelException e) {
      // the client left, or the server closed the connection while shutting down
    } catch (IOException | RuntimeException e) {
      server.log("connection " + id + ": " + e);
    } finally {
      try {
        wire.close();
      } catch (IOException e) {
        // closing anyway
      }
      server.closed(this);
    }
  }

  /** Whether a request is being served now. */
  boolean busy() {
    return inFlight.availablePermits() < MAX_IN_FLIGHT;
  }

  /** Ends the connection: the reading thread stops, requests under way fail to answer. */
  void abort() {
    try {
      wire.close();
    } catch (IOException e) {
      // closed
    }
  }

  /** Waits until every request handed to the pool is answered. */
  private void drain() {
    inFlight.acquireUninterruptibly(MAX_IN_FLIGHT);
    inFlight.release(MAX_IN_FLIGHT);
  }

  private void transmit() throws IOException {
    ByteBuffer h = ByteBuffer.allocate(28);
    while (true) {
      wire.readFully(h.clear());
      h.flip();
      if (h.getInt() != REQUEST_MAGIC) {
        server.log("connection " + id + ": a request without the request magic; disconnecting");
        return;
      }
      int flags = Short.toUnsignedInt(h.getShort());
      int type = Short.toUnsignedInt(h.getShort());
      long cookie = h.getLong();
      long offset = h.getLong();
      long length = Integer.toUnsignedLong(h.getInt());
      if (type == CMD_DISC) {
        return; // the caller answers everything in flight, then closes
      }
      byte[] payload = null;
      int reserved = 0;
      if (type == CMD_WRITE) {
        if (length > MAX_PAYLOAD) {
          server.log(
              "connection "
                  + id
                  + ": a write of "
                  + length
                  + " bytes, more than "
                  + MAX_PAYLOAD
                  + "; disconnecting");
          return;
        }
        reserved = server.reserve((int) length);
        try {
          payload = new byte[(int) length];
          wire.readFully(payload, 0, payload.length);
        } catch (IOException | RuntimeException e) {
          server.unreserve(reserved);
          throw e;
        }
      } else if (type == CMD_READ && length <= MAX_PAYLOAD) {
        reserved = server.reserve((int) length);
      }
      Request r = new Request(flags, type, cookie, offset, length, payload, reserved);
      inFlight.acquireUninterruptibly();
      try {
        server.execute(() -> serve(r));
      } catch (RejectedExecutionException e) {
        serve(r); // the pool has stopped: answer here (with ESHUTDOWN)
      }
    }
  }

  private void serve(Request r) {
    try {
      server.counted();
      if (server.shuttingDown()) {
        throw new Refusal(ESHUTDOWN, "the server is shutting down");
      }
      switch (r.type) {
        case CMD_READ -> read(r);
        case CMD_WRITE -> {
          allow(r, 0);
          writable(r, ENOSPC);
          handle.write(r.offset, r.payload, 0, r.payload.length);
          server.wrote(r.payload.length);
          done(r);
        }
        case CMD_FLUSH -> {
          allow(r, 0);
          handle.flush();
          ok(r);
        }
        case CMD_TRIM -> {
          allow(r, 0);
          writable(r, EINVAL);
          handle.discard(r.offset, r.length);
          done(r);
        }
        case CMD_WRITE_ZEROES -> {
          allow(r, CMD_FLAG_NO_HOLE); // zeros are always written: NO_HOLE holds either way
          writable(r, ENOSPC);
          handle.writeZeros(r.offset, r.length);
          done(r);
        }
        case CMD_BLOCK_STATUS -> blockStatus(r);
        default -> throw new Refusal(EINVAL, "unknown command " + r.type);
      }
    } catch (Refusal e) {
      error(r, e.errno, e.getMessage());
    } catch (IOException | RuntimeException e) {
      server.failed();
      String what =
          session.export().name() + " " + command(r.type) + " at " + r.offset + "+" + r.length;
      server.log(what + " failed: " + e.getMessage());
      error(r, errno(e), what + ": " + e.getMessage());
    } finally {
      server.unreserve(r.reserved);
      inFlight.release();
    }
  }

  /** Flags other than FUA (valid on every command) and {@code extra} are refused. */
  private static void allow(Request r, int extra) throws Refusal {
    if ((r.flags & ~(CMD_FLAG_FUA | extra)) != 0) {
      throw new Refusal(
          EINVAL,
          "flags 0x" + Integer.toHexString(r.flags) + " are not valid for " + command(r.type));
    }
  }

  /** A write to a read-only export is EPERM; a range past the end {@code pastEnd}. */
  private void writable(Request r, int pastEnd) throws Refusal {
    if (!session.export().writable()) {
      throw new Refusal(EPERM, session.export().name() + " is read-only");
    }
    inRange(r, pastEnd);
  }

  private void inRange(Request r, int errno) throws Refusal {
    long size = session.export().size();
    if (r.offset < 0 || r.offset > size - r.length) {
      throw new Refusal(
          errno,
          r.offset
              + "+"
              + r.length
              + " reaches past the end of "
              + session.export().name()
              + " ("
              + size
              + " bytes)");
    }
  }

  /** Answers a write-type command; with FUA, once it is durable. */
  private void done(Request r) throws IOException {
    if ((r.flags & CMD_FLAG_FUA) != 0) {
      handle.flush();
    }
    ok(r);
  }

  private void read(Request r) throws IOException, Refusal {
    allow(r, session.structured() ? CMD_FLAG_DF : 0);
    if (r.length > MAX_PAYLOAD) {
      throw new Refusal(
          session.structured() ? EOVERFLOW : EINVAL,
          "a read of more than " + MAX_PAYLOAD + " bytes");
    }
    inRange(r, EINVAL);
    int len = (int) r.length;
    boolean structured = session.structured();
    int head = structured ? 28 : 16;
    byte[] buf = new byte[head + len]; // zero-filled: zeros need no copy
    // runs of data and of zeros, for structured replies that state holes as such
    List<long[]> runs = structured && (r.flags & CMD_FLAG_DF) == 0 ? new ArrayList<>() : null;
    if (len > 0) {
      handle.read(
          r.offset,
          len,
          (at, data, from, n) -> {
            if (data != null) {
              System.arraycopy(data, from, buf, head + at, n);
            }
            if (runs != null) {
              long hole = data == null ? 1 : 0;
              long[] last = runs.isEmpty() ? null : runs.get(runs.size() - 1);
              if (last != null && last[2] == hole) {
                last[1] += n;
              } else {
                runs.add(new long[] {at, n, hole});
              }
            }
          });
    }
    server.read(len);
    ByteBuffer b = ByteBuffer.wrap(buf);
    if (!structured) {
      wire.send(b.putInt(SIMPLE_REPLY_MAGIC).putInt(0).putLong(r.cookie).rewind());
    } else if (len == 0) {
      wire.send(chunk(r, REPLY_FLAG_DONE, REPLY_TYPE_NONE, 0, 0).flip());
    } else if (runs == null || (runs.size() == 1 && runs.get(0)[2] == 0)) {
      b.putInt(STRUCTURED_REPLY_MAGIC)
          .putShort((short) REPLY_FLAG_DONE)
          .putShort((short) REPLY_TYPE_OFFSET_DATA)
          .putLong(r.cookie)
          .putInt(8 + len)
          .putLong(r.offset);
      wire.send(b.rewind());
    } else {
      List<ByteBuffer> out = new ArrayList<>();
      for (int k = 0; k < runs.size(); k++) {
        long[] run = runs.get(k);
        int flags = k == runs.size() - 1 ? REPLY_FLAG_DONE : 0;
        if (run[2] == 1) {
          out.add(
              chunk(r, flags, REPLY_TYPE_OFFSET_HOLE, 12, 12)
                  .putLong(r.offset + run[0])
                  .putInt((int) run[1])
                  .flip());
        } else {
          out.add(
              chunk(r, flags, REPLY_TYPE_OFFSET_DATA, 8 + (int) run[1], 8)
                  .putLong(r.offset + run[0])
                  .flip());
          out.add(ByteBuffer.wrap(buf, head + (int) run[0], (int) run[1]));
        }
      }
      wire.send(out.toArray(new ByteBuffer[0]));
    }
  }

  private void blockStatus(Request r) throws IOException, Refusal {
    allow(r, CMD_FLAG_REQ_ONE);
    if (!session.allocation()) {
      throw new Refusal(EINVAL, "no metadata context was selected for " + session.export().name());
    }
    if (r.length == 0) {
      throw new Refusal(EINVAL, "a block status request of 0 bytes");
    }
    inRange(r, EINVAL);
    boolean one = (r.flags & CMD_FLAG_REQ_ONE) != 0;
    List<Export.Extent> extents = handle.extents(r.offset, r.length);
    int n = Math.min(one ? 1 : MAX_EXTENTS, extents.size());
    ByteBuffer p = ByteBuffer.allocate(4 + 8 * n).putInt(Handshake.ALLOCATION_CONTEXT_ID);
    int count = 0;
    for (Export.Extent e : extents) {
      long len = Math.min(e.length(), MAX_EXTENT);
      if (one) {
        len = Math.min(len, r.length);
      }
      p.putInt((int) len).putInt(e.hole() ? STATE_HOLE | STATE_ZERO : 0);
      if (++count == n || len < e.length()) {
        break; // the client asks again from where this reply ends
      }
    }
    wire.send(
        chunk(r, REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, 4 + 8 * count, 0).flip(), p.flip());
  }

  /**
   * A structured reply chunk's header stating {@code length} bytes of payload, with room for the
   * payload's first {@code fields} bytes (the caller puts them, then flips).
   */
  private static ByteBuffer chunk(Request r, int flags, int type, int length, int fields) {
    return ByteBuffer.allocate(20 + fields)
        .putInt(STRUCTURED_REPLY_MAGIC)
        .putShort((short) flags)
        .putShort((short) type)
        .putLong(r.cookie)
        .putInt(length);
  }

  private void ok(Request r) throws IOException {
    wire.send(
        ByteBuffer.allocate(16).putInt(SIMPLE_REPLY_MAGIC).putInt(0).putLong(r.cookie).flip());
  }

  /**
   * Answers {@code r} with an error: a structured error chunk with the message where negotiated.
   */
  private void error(Request r, int errno, String message) {
    try {
      if (session.structured()) {
        byte[] m = Handshake.utf8(message);
        wire.send(
            chunk(r, REPLY_FLAG_DONE, REPLY_TYPE_ERROR, 6 + m.length, 6 + m.length)
                .putInt(errno)
                .putShort((short) m.length)
                .put(m)
                .flip());
      } else {
        wire.send(
            ByteBuffer.allocate(16)
                .putInt(SIMPLE_REPLY_MAGIC)
                .putInt(errno)
                .putLong(r.cookie)
                .flip());
      }
    } catch (IOException e) {
      abort(); // the client is gone
    }
  }

  /** ENOSPC for a full target (the JDK keeps errno only in the message), else EIO. */
  static int errno(Throwable e) {
    for (Throwable c = e; c != null; c = c.getCause()) {
      String m = c.getMessage();
      if (m != null
          && (m.contains("No space left on device")
              || m.contains("Disk quota exceeded")
              || m.contains("File too large"))) {
        return ENOSPC;
      }
    }
    return EIO;
  }

  private static String command(int type) {
    return switch (type) {
      case CMD_READ -> "read";
      case CMD_WRITE -> "write";
      case CMD_FLUSH -> "flush";
      case CMD_TRIM -> "trim";
      case CMD_WRITE_ZEROES -> "write-zeroes";
      case CMD_BLOCK_STATUS -> "block-status";
      default -> "command " + type;
    };
  }
}
