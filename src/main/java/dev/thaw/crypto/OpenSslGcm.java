package dev.thaw.crypto;

import com.kenai.jffi.ArrayFlags;
import com.kenai.jffi.Function;
import com.kenai.jffi.HeapInvocationBuffer;
import com.kenai.jffi.Invoker;
import com.kenai.jffi.Library;
import com.kenai.jffi.MemoryIO;
import com.kenai.jffi.Type;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * AES-256-GCM with 16-byte IVs through the system's OpenSSL {@code libcrypto}, called through jffi
 * (already loaded for FUSE). It exists because the JDK's GCM is slow on the JDK most users have: on
 * JDK 17 a cold 4 MiB chunk decrypts at well under 1 GB/s until C2 has compiled the provider, where
 * libcrypto runs at several GB/s from the first chunk. Native-backed JCA providers do not help
 * here: Conscrypt accepts only 12-byte nonces and Proxmox's blobs carry 16-byte ones.
 *
 * <p>{@link #load()} opens the library and checks it against known answers (a blob seals to and
 * opens from the bytes the JDK makes, a blob with one bit flipped is refused); any failure leaves
 * the JDK's implementation in charge. Each call makes and frees its own cipher context, so an
 * instance is immutable and thread-safe; the arrays are pinned for the call, never copied. Key
 * bytes go only to libcrypto, which wipes its context when freed.
 */
final class OpenSslGcm {
  private static final String[] LIBRARIES = {"libcrypto.so.3", "libcrypto.so.1.1"};
  private static final int CTRL_GCM_SET_IVLEN = 0x9;
  private static final int CTRL_GCM_GET_TAG = 0x10;
  private static final int CTRL_GCM_SET_TAG = 0x11;
  private static final int IN = ArrayFlags.IN | ArrayFlags.PINNED;
  private static final int OUT = ArrayFlags.OUT | ArrayFlags.PINNED;

  /** AES-256-GCM of 40 bytes under key 00..1f and the 16-byte IV 20..2f (from the JDK's GCM). */
  private static final byte[] TEST_KEY = range(0, 32);

  private static final byte[] TEST_IV = range(32, 16);
  private static final byte[] TEST_PLAIN =
      "thaw checks libcrypto's GCM at start-up.".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] TEST_CIPHER =
      HexFormat.of()
          .parseHex(
              "bfa4c5913ce2718add687d8b695a9cfdeeb41292bfc363e42262c9145eced49c13afae78956cac31");
  private static final byte[] TEST_TAG =
      HexFormat.of().parseHex("4225df9eae8ad83309bae894abe789e7");

  private final String name;
  private final Invoker invoker = Invoker.getInstance();
  private final long cipher;
  private final Function ctxNew;
  private final Function ctxFree;
  private final Function ctrl;
  private final Function init;
  private final Function update;
  private final Function finish;
  private final Function sealInit;
  private final Function sealUpdate;
  private final Function sealFinish;

  private OpenSslGcm(String name, Library lib) throws LinkageError {
    this.name = name;
    Function gcm = function(lib, "EVP_aes_256_gcm", Type.POINTER);
    this.ctxNew = function(lib, "EVP_CIPHER_CTX_new", Type.POINTER);
    this.ctxFree = function(lib, "EVP_CIPHER_CTX_free", Type.VOID, Type.POINTER);
    this.ctrl =
        function(
            lib,
            "EVP_CIPHER_CTX_ctrl",
            Type.SINT,
            Type.POINTER,
            Type.SINT,
            Type.SINT,
            Type.POINTER);
    this.init = initFunction(lib, "EVP_DecryptInit_ex");
    this.update = updateFunction(lib, "EVP_DecryptUpdate");
    this.finish =
        function(lib, "EVP_DecryptFinal_ex", Type.SINT, Type.POINTER, Type.POINTER, Type.POINTER);
    this.sealInit = initFunction(lib, "EVP_EncryptInit_ex");
    this.sealUpdate = updateFunction(lib, "EVP_EncryptUpdate");
    this.sealFinish =
        function(lib, "EVP_EncryptFinal_ex", Type.SINT, Type.POINTER, Type.POINTER, Type.POINTER);
    this.cipher = invoker.invokeAddress(gcm, new HeapInvocationBuffer(gcm));
    if (cipher == 0) {
      throw new LinkageError(name + ": EVP_aes_256_gcm() returned NULL");
    }
  }

  /**
   * The first library that loads and gives the known answers.
   *
   * @throws IOException naming why none does (no libcrypto, no jffi native stub, a wrong answer)
   */
  static OpenSslGcm load() throws IOException {
    String reason = "found none of " + String.join(", ", LIBRARIES);
    for (String file : LIBRARIES) {
      try {
        Library lib = Library.getCachedInstance(file, Library.LAZY | Library.LOCAL);
        if (lib == null) {
          continue;
        }
        OpenSslGcm gcm = new OpenSslGcm(version(lib) + " (" + file + ")", lib);
        String wrong = gcm.selfTest();
        if (wrong == null) {
          return gcm;
        }
        reason = file + " " + wrong;
      } catch (LinkageError | RuntimeException e) {
        reason = file + ": " + e;
      }
    }
    throw new IOException(reason);
  }

  /** What was loaded: OpenSSL's own version line and the library file. */
  String name() {
    return name;
  }

  /**
   * Decrypts {@code len} bytes of {@code in} at {@code inOff} into {@code out} at {@code outOff}
   * and checks the 16-byte {@code tag} at {@code tagOff}; the output may not overlap the input
   * other than exactly.
   *
   * @return false when the tag does not match (the output is then garbage)
   */
  boolean decrypt(
      byte[] key,
      byte[] iv,
      int ivOff,
      byte[] tag,
      int tagOff,
      byte[] in,
      int inOff,
      int len,
      byte[] out,
      int outOff) {
    return run(false, key, iv, ivOff, tag, tagOff, in, inOff, len, out, outOff);
  }

  /**
   * Encrypts {@code len} bytes of {@code in} at {@code inOff} into {@code out} at {@code outOff}
   * and writes the 16-byte tag to {@code tag} at {@code tagOff}.
   */
  void encrypt(
      byte[] key,
      byte[] iv,
      int ivOff,
      byte[] in,
      int inOff,
      int len,
      byte[] out,
      int outOff,
      byte[] tag,
      int tagOff) {
    check(
        run(true, key, iv, ivOff, tag, tagOff, in, inOff, len, out, outOff), "EVP_EncryptFinal_ex");
  }

  /** One whole GCM operation in a context of its own. */
  private boolean run(
      boolean seal,
      byte[] key,
      byte[] iv,
      int ivOff,
      byte[] tag,
      int tagOff,
      byte[] in,
      int inOff,
      int len,
      byte[] out,
      int outOff) {
    if (key.length != 32
        || ivOff < 0
        || ivOff > iv.length - CryptConfig.IV_LENGTH
        || tagOff < 0
        || tagOff > tag.length - CryptConfig.TAG_LENGTH
        || len < 0
        || inOff < 0
        || inOff > in.length - len
        || outOff < 0
        || outOff > out.length - len) {
      // libcrypto would read or write outside the arrays: never let a bad range reach it
      throw new IndexOutOfBoundsException("AES-GCM range outside its arrays");
    }
    long ctx = invoker.invokeAddress(ctxNew, new HeapInvocationBuffer(ctxNew));
    if (ctx == 0) {
      throw new OutOfMemoryError("EVP_CIPHER_CTX_new failed");
    }
    try {
      Function init = seal ? sealInit : this.init;
      check(init(init, ctx, cipher, null, null, 0), "cipher init");
      check(control(ctx, CTRL_GCM_SET_IVLEN, CryptConfig.IV_LENGTH, null, 0), "GCM_SET_IVLEN");
      check(init(init, ctx, 0, key, iv, ivOff), "key init");
      int[] written = new int[1];
      if (len > 0) {
        Function update = seal ? sealUpdate : this.update;
        HeapInvocationBuffer b = new HeapInvocationBuffer(update);
        b.putAddress(ctx);
        b.putArray(out, outOff, len, OUT);
        b.putArray(written, 0, 1, ArrayFlags.OUT);
        b.putArray(in, inOff, len, IN);
        b.putInt(len);
        check(invoker.invokeInt(update, b) == 1, "update");
        check(written[0] == len, "update wrote " + written[0] + " of " + len);
      }
      if (!seal) {
        check(control(ctx, CTRL_GCM_SET_TAG, CryptConfig.TAG_LENGTH, tag, tagOff), "GCM_SET_TAG");
      }
      // GCM emits nothing at the end; the output argument only has to be a valid pointer
      Function finish = seal ? sealFinish : this.finish;
      HeapInvocationBuffer b = new HeapInvocationBuffer(finish);
      b.putAddress(ctx);
      b.putArray(new byte[16], 0, 16, ArrayFlags.OUT);
      b.putArray(written, 0, 1, ArrayFlags.OUT);
      boolean ok = invoker.invokeInt(finish, b) > 0;
      if (seal && ok) {
        check(control(ctx, CTRL_GCM_GET_TAG, CryptConfig.TAG_LENGTH, tag, tagOff), "GCM_GET_TAG");
      }
      return ok;
    } finally {
      HeapInvocationBuffer b = new HeapInvocationBuffer(ctxFree);
      b.putAddress(ctx);
      invoker.invokeInt(ctxFree, b);
    }
  }

  /**
   * {@code init(ctx, cipher, NULL, key, iv)}: a zero cipher keeps the context's, a null key no key.
   */
  private boolean init(Function init, long ctx, long cipher, byte[] key, byte[] iv, int ivOff) {
    HeapInvocationBuffer b = new HeapInvocationBuffer(init);
    b.putAddress(ctx);
    b.putAddress(cipher);
    b.putAddress(0);
    if (key == null) {
      b.putAddress(0);
      b.putAddress(0);
    } else {
      b.putArray(key, 0, key.length, IN);
      b.putArray(iv, ivOff, CryptConfig.IV_LENGTH, IN);
    }
    return invoker.invokeInt(init, b) == 1;
  }

  private boolean control(long ctx, int type, int arg, byte[] data, int off) {
    HeapInvocationBuffer b = new HeapInvocationBuffer(ctrl);
    b.putAddress(ctx);
    b.putInt(type);
    b.putInt(arg);
    if (data == null) {
      b.putAddress(0);
    } else {
      b.putArray(data, off, arg, IN | OUT); // GCM_GET_TAG writes the tag here
    }
    return invoker.invokeInt(ctrl, b) == 1;
  }

  /** Null when the known answers come out right, else what went wrong. */
  private String selfTest() {
    byte[] out = new byte[TEST_PLAIN.length];
    if (!decrypt(TEST_KEY, TEST_IV, 0, TEST_TAG, 0, TEST_CIPHER, 0, out.length, out, 0)
        || !Arrays.equals(out, TEST_PLAIN)) {
      return "decrypted a known blob wrongly";
    }
    byte[] sealed = new byte[TEST_PLAIN.length];
    byte[] tag = new byte[CryptConfig.TAG_LENGTH];
    encrypt(TEST_KEY, TEST_IV, 0, TEST_PLAIN, 0, TEST_PLAIN.length, sealed, 0, tag, 0);
    if (!Arrays.equals(sealed, TEST_CIPHER) || !Arrays.equals(tag, TEST_TAG)) {
      return "encrypted a known blob wrongly";
    }
    byte[] altered = TEST_CIPHER.clone();
    altered[7] ^= 1;
    if (decrypt(TEST_KEY, TEST_IV, 0, TEST_TAG, 0, altered, 0, out.length, out, 0)) {
      return "accepted an altered blob";
    }
    return null;
  }

  private static void check(boolean ok, String what) {
    if (!ok) {
      throw new IllegalStateException("libcrypto: " + what + " failed");
    }
  }

  private static Function function(Library lib, String symbol, Type result, Type... params) {
    long address = lib.getSymbolAddress(symbol);
    if (address == 0) {
      throw new LinkageError("no " + symbol + ": " + Library.getLastError());
    }
    return new Function(address, result, params);
  }

  /**
   * {@code int f(EVP_CIPHER_CTX *, const EVP_CIPHER *, ENGINE *, const uchar *key, const uchar
   * *iv)}
   */
  private static Function initFunction(Library lib, String symbol) {
    Type p = Type.POINTER;
    return function(lib, symbol, Type.SINT, p, p, p, p, p);
  }

  /** {@code int f(EVP_CIPHER_CTX *, uchar *out, int *outl, const uchar *in, int inl)} */
  private static Function updateFunction(Library lib, String symbol) {
    Type p = Type.POINTER;
    return function(lib, symbol, Type.SINT, p, p, p, p, Type.SINT);
  }

  private static String version(Library lib) {
    Function v = function(lib, "OpenSSL_version", Type.POINTER, Type.SINT);
    HeapInvocationBuffer b = new HeapInvocationBuffer(v);
    b.putInt(0);
    long s = Invoker.getInstance().invokeAddress(v, b);
    return s == 0
        ? "OpenSSL"
        : new String(
            MemoryIO.getInstance().getZeroTerminatedByteArray(s, 200), StandardCharsets.US_ASCII);
  }

  private static byte[] range(int from, int n) {
    byte[] b = new byte[n];
    for (int i = 0; i < n; i++) {
      b[i] = (byte) (from + i);
    }
    return b;
  }
}
