package dev.thaw.nbd;

import static dev.thaw.nbd.Protocol.*;

import java.io.IOException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;

/**
 * The fixed newstyle handshake of one connection: greeting, client flags, then options until the
 * client enters transmission ({@code NBD_OPT_GO} or {@code NBD_OPT_EXPORT_NAME}) or leaves. Options
 * thaw does not know are answered {@code NBD_REP_ERR_UNSUP}; malformed ones {@code
 * NBD_REP_ERR_INVALID}; no TLS is offered. Runs on the connection's thread.
 */
final class Handshake {
  /**
   * The outcome: the export chosen, structured replies, and whether base:allocation was selected.
   */
  record Negotiated(Export export, boolean structured, boolean allocation, boolean noZeroes) {}

  /** A malformed option: answered NBD_REP_ERR_INVALID, and the haggling goes on. */
  private static final class Invalid extends Exception {
    Invalid(String message) {
      super(message, null, false, false);
    }
  }

  /** The id of the base:allocation context; any value serves, it is opaque to clients. */
  static final int ALLOCATION_CONTEXT_ID = 1;

  private final Wire wire;
  private final ExportTable exports;
  private final BooleanSupplier shuttingDown;
  private boolean structured;

  /** The export for which base:allocation was selected last, or null. */
  private String allocationFor;

  Handshake(Wire wire, ExportTable exports, BooleanSupplier shuttingDown) {
    this.wire = wire;
    this.exports = exports;
    this.shuttingDown = shuttingDown;
  }

  /** Runs the handshake; null when the client aborted or sent what cannot be answered. */
  Negotiated run() throws IOException {
    wire.send(
        ByteBuffer.allocate(18)
            .putLong(NBDMAGIC)
            .putLong(IHAVEOPT)
            .putShort((short) (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES))
            .flip());
    int clientFlags = wire.read(4).getInt();
    if ((clientFlags & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)) != 0) {
      return null; // the protocol says: close on client flags we do not know
    }
    boolean noZeroes = (clientFlags & FLAG_C_NO_ZEROES) != 0;
    while (true) {
      ByteBuffer h = wire.read(16);
      if (h.getLong() != IHAVEOPT) {
        return null;
      }
      int option = h.getInt();
      long length = Integer.toUnsignedLong(h.getInt());
      if (length > MAX_OPTION_DATA) {
        return null; // no option is that long: not a client to go on with
      }
      ByteBuffer data = wire.read((int) length);
      if (option == OPT_ABORT) {
        reply(option, REP_ACK, null);
        return null;
      }
      if (shuttingDown.getAsBoolean()) {
        if (option == OPT_EXPORT_NAME) {
          return null; // cannot be refused with an error
        }
        error(option, REP_ERR_SHUTDOWN, "the server is shutting down");
        continue;
      }
      try {
        Negotiated n = option(option, data, noZeroes);
        if (n != null) {
          return n;
        }
      } catch (Invalid e) {
        error(option, REP_ERR_INVALID, e.getMessage());
      } catch (BufferUnderflowException e) {
        error(option, REP_ERR_INVALID, "option " + option + " is shorter than its fields");
      }
    }
  }

  /** Answers one option; returns the outcome when it ends the handshake. */
  private Negotiated option(int option, ByteBuffer data, boolean noZeroes)
      throws IOException, Invalid {
    switch (option) {
      case OPT_EXPORT_NAME -> {
        Export e = exports.find(string(data, data.remaining()));
        if (e == null) {
          return null; // this option cannot be refused with an error: hard disconnect
        }
        ByteBuffer b = ByteBuffer.allocate(noZeroes ? 10 : 134);
        b.putLong(e.size()).putShort((short) transmissionFlags(e, structured));
        wire.send(b.position(b.capacity()).flip());
        return new Negotiated(
            e, structured, allocationFor != null && allocationFor.equals(e.name()), noZeroes);
      }
      case OPT_LIST -> {
        if (data.hasRemaining()) {
          throw new Invalid("NBD_OPT_LIST takes no data");
        }
        for (Export e : exports.all()) {
          byte[] name = utf8(e.name());
          byte[] desc = utf8(e.description());
          reply(
              option,
              REP_SERVER,
              ByteBuffer.allocate(4 + name.length + desc.length)
                  .putInt(name.length)
                  .put(name)
                  .put(desc)
                  .flip());
        }
        reply(option, REP_ACK, null);
      }
      case OPT_INFO, OPT_GO -> {
        String name = string(data, data.getInt());
        int n = Short.toUnsignedInt(data.getShort());
        if (data.remaining() != 2 * n) {
          throw new Invalid("the information requests do not fill the option");
        }
        List<Integer> requests = new ArrayList<>();
        for (int i = 0; i < n; i++) {
          requests.add(Short.toUnsignedInt(data.getShort()));
        }
        Export e = exports.find(name);
        if (e == null) {
          error(option, REP_ERR_UNKNOWN, unknown(name));
          return null;
        }
        info(option, e, requests);
        reply(option, REP_ACK, null);
        if (option == OPT_GO) {
          return new Negotiated(
              e, structured, allocationFor != null && allocationFor.equals(e.name()), noZeroes);
        }
      }
      case OPT_STRUCTURED_REPLY -> {
        if (data.hasRemaining()) {
          throw new Invalid("NBD_OPT_STRUCTURED_REPLY takes no data");
        }
        if (structured) {
          throw new Invalid("structured replies are negotiated already");
        }
        structured = true;
        reply(option, REP_ACK, null);
      }
      case OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT -> metaContext(option, data);
      case OPT_STARTTLS ->
          error(
              option,
              REP_ERR_POLICY,
              "thaw offers no TLS: serve on a unix socket, or on a trusted network only");
      default -> error(option, REP_ERR_UNSUP, "option " + option + " is not supported");
    }
    return null;
  }

  /**
   * NBD_REP_INFO replies for an export: always its size and flags; name, description and block
   * sizes when asked.
   */
  private void info(int option, Export e, List<Integer> requests) throws IOException {
    reply(
        option,
        REP_INFO,
        ByteBuffer.allocate(12)
            .putShort((short) INFO_EXPORT)
            .putLong(e.size())
            .putShort((short) transmissionFlags(e, structured))
            .flip());
    if (requests.contains(INFO_NAME)) {
      byte[] name = utf8(e.name());
      reply(
          option,
          REP_INFO,
          ByteBuffer.allocate(2 + name.length).putShort((short) INFO_NAME).put(name).flip());
    }
    if (requests.contains(INFO_DESCRIPTION)) {
      byte[] d = utf8(e.description());
      reply(
          option,
          REP_INFO,
          ByteBuffer.allocate(2 + d.length).putShort((short) INFO_DESCRIPTION).put(d).flip());
    }
    if (requests.contains(INFO_BLOCK_SIZE)) {
      reply(
          option,
          REP_INFO,
          ByteBuffer.allocate(14)
              .putShort((short) INFO_BLOCK_SIZE)
              .putInt(MIN_BLOCK)
              .putInt(PREFERRED_BLOCK)
              .putInt(MAX_PAYLOAD)
              .flip());
    }
  }

  /** NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: thaw knows base:allocation only. */
  private void metaContext(int option, ByteBuffer data) throws IOException, Invalid {
    boolean set = option == OPT_SET_META_CONTEXT;
    if (set) {
      allocationFor = null; // a SET replaces the selection, also when it fails
    }
    if (!structured) {
      throw new Invalid("negotiate structured replies before metadata contexts");
    }
    String name = string(data, data.getInt());
    int queries = data.getInt();
    boolean match = !set && queries == 0; // listing with no query lists every context
    for (int i = 0; i < queries; i++) {
      String q = string(data, data.getInt());
      if (q.indexOf(':') <= 0) {
        throw new Invalid("metadata context query '" + q + "' has no namespace");
      }
      match |= q.equals(BASE_ALLOCATION) || (!set && q.equals("base:"));
    }
    if (data.hasRemaining()) {
      throw new Invalid("bytes after the last query");
    }
    Export e = exports.find(name);
    if (e == null) {
      error(option, REP_ERR_UNKNOWN, unknown(name));
      return;
    }
    if (match) {
      byte[] ctx = utf8(BASE_ALLOCATION);
      reply(
          option,
          REP_META_CONTEXT,
          ByteBuffer.allocate(4 + ctx.length)
              .putInt(set ? ALLOCATION_CONTEXT_ID : 0)
              .put(ctx)
              .flip());
      if (set) {
        allocationFor = e.name();
      }
    }
    reply(option, REP_ACK, null);
  }

  /**
   * The transmission flags of an export: every export may be read over several connections at once.
   */
  static int transmissionFlags(Export e, boolean structured) {
    // Multi-conn holds for writable exports too: every connection writes the same target and
    // reads its state, and a flush syncs the target and records every present chunk, whichever
    // connection wrote it.
    int f = FLAG_HAS_FLAGS | FLAG_CAN_MULTI_CONN;
    f |=
        e.writable()
            ? FLAG_SEND_FLUSH | FLAG_SEND_FUA | FLAG_SEND_TRIM | FLAG_SEND_WRITE_ZEROES
            : FLAG_READ_ONLY;
    return structured ? f | FLAG_SEND_DF : f;
  }

  private String unknown(String name) {
    return "no export named '" + name + "' (exports: " + String.join(", ", exports.names()) + ")";
  }

  private static String string(ByteBuffer data, int length) throws Invalid {
    if (length < 0 || length > data.remaining()) {
      throw new Invalid("a string is longer than the option");
    }
    if (length > MAX_STRING) {
      throw new Invalid("a string is longer than " + MAX_STRING + " bytes");
    }
    ByteBuffer s = data.slice(data.position(), length);
    data.position(data.position() + length);
    try {
      return StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .decode(s)
          .toString();
    } catch (CharacterCodingException e) {
      throw new Invalid("a string is not UTF-8");
    }
  }

  static byte[] utf8(String s) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    return b.length <= MAX_STRING ? b : java.util.Arrays.copyOf(b, MAX_STRING);
  }

  private void error(int option, int type, String message) throws IOException {
    reply(option, type, ByteBuffer.wrap(utf8(message)));
  }

  private void reply(int option, int type, ByteBuffer data) throws IOException {
    int n = data == null ? 0 : data.remaining();
    ByteBuffer h =
        ByteBuffer.allocate(20)
            .putLong(OPTION_REPLY_MAGIC)
            .putInt(option)
            .putInt(type)
            .putInt(n)
            .flip();
    if (data == null) {
      wire.send(h);
    } else {
      wire.send(h, data);
    }
  }
}
