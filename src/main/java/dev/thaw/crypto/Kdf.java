package dev.thaw.crypto;

/** Key derivation functions a key file may use to protect its key with a passphrase. */
public enum Kdf {
  /** scrypt, n=65536 r=8 p=1 by default (Proxmox's default). */
  SCRYPT,
  /** PBKDF2-HMAC-SHA256 (read only; thaw creates scrypt keys). */
  PBKDF2,
  /** The key is stored in the clear. */
  NONE
}
