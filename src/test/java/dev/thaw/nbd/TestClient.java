package dev.thaw.nbd;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** A minimal NBD client for tests, written from the protocol document; one thread only. */
final class TestClient implements AutoCloseable {
  final SocketChannel channel;
  final DataInputStream in;
  final DataOutputStream out;
  int handshakeFlags;

  record OptReply(int option, int type, byte[] data) {
    String text() {
      return new String(data, StandardCharsets.UTF_8);
    }
  }

  /** One reply: simple (type -1) or one structured chunk. */
  record Reply(int flags, int type, long cookie, int error, byte[] payload) {
    boolean done() {
      return type == -1 || (flags & Protocol.REPLY_FLAG_DONE) != 0;
    }
  }

  TestClient(Path socket) throws IOException {
    channel = SocketChannel.open(UnixDomainSocketAddress.of(socket));
    in = new DataInputStream(Channels.newInputStream(channel));
    out = new DataOutputStream(Channels.newOutputStream(channel));
  }

  /** Reads the greeting and answers with {@code clientFlags}. */
  TestClient greet(int clientFlags) throws IOException {
    if (in.readLong() != Protocol.NBDMAGIC || in.readLong() != Protocol.IHAVEOPT) {
      throw new IOException("bad greeting");
    }
    handshakeFlags = in.readUnsignedShort();
    out.writeInt(clientFlags);
    out.flush();
    return this;
  }

  void option(int option, byte[] data) throws IOException {
    out.writeLong(Protocol.IHAVEOPT);
    out.writeInt(option);
    out.writeInt(data.length);
    out.write(data);
    out.flush();
  }

  OptReply optReply() throws IOException {
    if (in.readLong() != Protocol.OPTION_REPLY_MAGIC) {
      throw new IOException("bad option reply magic");
    }
    int option = in.readInt();
    int type = in.readInt();
    byte[] data = new byte[in.readInt()];
    in.readFully(data);
    return new OptReply(option, type, data);
  }

  /** Sends an option and reads its replies up to the final one (ACK or an error). */
  List<OptReply> ask(int option, byte[] data) throws IOException {
    option(option, data);
    List<OptReply> replies = new ArrayList<>();
    while (true) {
      OptReply r = optReply();
      replies.add(r);
      if (r.type == Protocol.REP_ACK || r.type < 0) {
        return replies;
      }
    }
  }

  static byte[] nameAndInfos(String name, int... infos) {
    byte[] n = name.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b =
        ByteBuffer.allocate(4 + n.length + 2 + 2 * infos.length)
            .putInt(n.length)
            .put(n)
            .putShort((short) infos.length);
    for (int i : infos) {
      b.putShort((short) i);
    }
    return b.array();
  }

  static byte[] metaQuery(String export, String... queries) {
    byte[] n = export.getBytes(StandardCharsets.UTF_8);
    int len = 4 + n.length + 4;
    for (String q : queries) {
      len += 4 + q.getBytes(StandardCharsets.UTF_8).length;
    }
    ByteBuffer b = ByteBuffer.allocate(len).putInt(n.length).put(n).putInt(queries.length);
    for (String q : queries) {
      byte[] qb = q.getBytes(StandardCharsets.UTF_8);
      b.putInt(qb.length).put(qb);
    }
    return b.array();
  }

  /** Fixed newstyle, then (optionally) structured replies and base:allocation, then GO. */
  TestClient go(String export, boolean structured, boolean allocation) throws IOException {
    greet(Protocol.FLAG_C_FIXED_NEWSTYLE | Protocol.FLAG_C_NO_ZEROES);
    if (structured) {
      expectAck(ask(Protocol.OPT_STRUCTURED_REPLY, new byte[0]));
    }
    if (allocation) {
      expectAck(ask(Protocol.OPT_SET_META_CONTEXT, metaQuery(export, Protocol.BASE_ALLOCATION)));
    }
    expectAck(ask(Protocol.OPT_GO, nameAndInfos(export)));
    return this;
  }

  private static void expectAck(List<OptReply> r) throws IOException {
    if (r.get(r.size() - 1).type != Protocol.REP_ACK) {
      throw new IOException("option refused: " + r.get(r.size() - 1).text());
    }
  }

  void request(int flags, int type, long cookie, long offset, long length, byte[] payload)
      throws IOException {
    out.writeInt(Protocol.REQUEST_MAGIC);
    out.writeShort(flags);
    out.writeShort(type);
    out.writeLong(cookie);
    out.writeLong(offset);
    out.writeInt((int) length);
    if (payload != null) {
      out.write(payload);
    }
    out.flush();
  }

  /** The next reply; a simple reply's data ({@code readLength} bytes) is read when it succeeded. */
  Reply reply(int readLength) throws IOException {
    int magic = in.readInt();
    if (magic == Protocol.SIMPLE_REPLY_MAGIC) {
      int error = in.readInt();
      long cookie = in.readLong();
      byte[] data = new byte[error == 0 ? readLength : 0];
      in.readFully(data);
      return new Reply(0, -1, cookie, error, data);
    }
    if (magic != Protocol.STRUCTURED_REPLY_MAGIC) {
      throw new IOException("bad reply magic " + Integer.toHexString(magic));
    }
    int flags = in.readUnsignedShort();
    int type = in.readUnsignedShort();
    long cookie = in.readLong();
    byte[] payload = new byte[in.readInt()];
    in.readFully(payload);
    int error = (type & 0x8000) != 0 ? ByteBuffer.wrap(payload).getInt() : 0;
    return new Reply(flags, type, cookie, error, payload);
  }

  /** The chunks of one structured reply, up to the one marked done. */
  List<Reply> chunks() throws IOException {
    List<Reply> all = new ArrayList<>();
    Reply r;
    do {
      r = reply(0);
      all.add(r);
    } while (!r.done());
    return all;
  }

  /**
   * Reads a structured reply to a read of {@code length} bytes at {@code offset} into bytes; throws
   * on an error chunk.
   */
  byte[] assemble(List<Reply> chunks, long offset, int length) throws IOException {
    byte[] b = new byte[length];
    long covered = 0;
    for (Reply r : chunks) {
      ByteBuffer p = ByteBuffer.wrap(r.payload);
      if (r.error != 0) {
        throw new IOException("error " + r.error);
      } else if (r.type == Protocol.REPLY_TYPE_OFFSET_DATA) {
        long at = p.getLong() - offset;
        p.get(b, (int) at, p.remaining());
        covered += r.payload.length - 8;
      } else if (r.type == Protocol.REPLY_TYPE_OFFSET_HOLE) {
        p.getLong();
        covered += Integer.toUnsignedLong(p.getInt());
      }
    }
    if (covered != length) {
      throw new IOException("the chunks cover " + covered + " of " + length + " bytes");
    }
    return b;
  }

  /** Whether the server has closed the connection. */
  boolean closedByServer() throws IOException {
    return in.read() < 0;
  }

  @Override
  public void close() throws IOException {
    channel.close();
  }
}
