// The crypt envelope, version 1, with WebCrypto: docs/ENVELOPE.md says it byte by byte, and
// clients/envelope (Rust) implements the same; both pass the vectors in docs/envelope-vectors.json.
// No cryptography is written here: AES-GCM, PBKDF2 and HMAC are the browser's own.

export const PREFIX = "crypt1:";
export const PREFIX_PASSPHRASE = "crypt1p:";
export const ITERATIONS = 600000;
export const SALT_LEN = 16;
export const NONCE_LEN = 12;
export const TAG_LEN = 16;
export const PASSPHRASE_FLAG = ".p";
/** The largest plaintext (bytes of UTF-8) whose envelope fits the service's 102,400 bytes. */
export const MAX_PLAINTEXT = 76750;

/** Why a secret could not be sealed or opened; `kind` is stable, `message` is for people. */
export class EnvelopeError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

const B64URL = /^[A-Za-z0-9_-]*$/;

export function encodeBase64url(bytes) {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Strict: only the base64url alphabet, no padding, canonical (what encoding would give). */
export function decodeBase64url(text) {
  if (!B64URL.test(text) || text.length % 4 === 1) return null;
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return encodeBase64url(bytes) === text ? bytes : null;
}

export function generateKey() {
  return crypto.getRandomValues(new Uint8Array(32));
}

/** `{key}` or `{key}.p`, without the `#`. */
export function encodeFragment(key, passphrase) {
  return encodeBase64url(key) + (passphrase ? PASSPHRASE_FLAG : "");
}

/** Reads a fragment (with or without its `#`) into `{ key, passphrase }`. */
export function decodeFragment(fragment) {
  let text = fragment.startsWith("#") ? fragment.slice(1) : fragment;
  const passphrase = text.endsWith(PASSPHRASE_FLAG);
  if (passphrase) text = text.slice(0, -PASSPHRASE_FLAG.length);
  if (text === "") throw new EnvelopeError("no-key", "This link has no key (the part after #).");
  const key = decodeBase64url(text);
  if (key === null || key.length !== 32) {
    throw new EnvelopeError("bad-key", "This link's key is damaged: it was cut short or changed.");
  }
  return { key, passphrase };
}

async function cipherKey(key, passphrase, salt) {
  let raw = key;
  if (passphrase !== null) {
    const password = new TextEncoder().encode(passphrase.normalize("NFC"));
    const base = await crypto.subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
    const derived = await crypto.subtle.deriveBits(
      { name: "PBKDF2", salt, iterations: ITERATIONS, hash: "SHA-256" }, base, 256);
    const mac = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    raw = new Uint8Array(await crypto.subtle.sign("HMAC", mac, derived));
  }
  return crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
}

const aadOf = (prefix) => new TextEncoder().encode(prefix.slice(0, -1));

/**
 * Seals `plaintext` (bytes) under `key` and, if not null, `passphrase`. `fixed` ({salt, nonce})
 * is for test vectors only: a nonce must never be used twice under one key.
 */
export async function seal(plaintext, key, passphrase = null, fixed = null) {
  const salt = fixed ? fixed.salt : crypto.getRandomValues(new Uint8Array(SALT_LEN));
  const nonce = fixed ? fixed.nonce : crypto.getRandomValues(new Uint8Array(NONCE_LEN));
  const prefix = passphrase === null ? PREFIX : PREFIX_PASSPHRASE;
  const aes = await cipherKey(key, passphrase, salt);
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aadOf(prefix) }, aes, plaintext));
  const header = passphrase === null ? nonce : concat(salt, nonce);
  return prefix + encodeBase64url(concat(header, sealed));
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** True when the envelope needs a passphrase; throws for plain text or an unknown version. */
export function needsPassphrase(envelope) {
  if (envelope.startsWith(PREFIX)) return false;
  if (envelope.startsWith(PREFIX_PASSPHRASE)) return true;
  const version = /^(crypt\d[^:]{0,7}):/.exec(envelope);
  if (version) {
    throw new EnvelopeError("unknown-version",
      `This secret was sealed with envelope version '${version[1]}', which this page does not know.`);
  }
  throw new EnvelopeError("not-an-envelope", "This secret is not end-to-end encrypted.");
}

/** Opens an envelope; returns the plaintext bytes, or throws: never a half-decrypted secret. */
export async function open(envelope, key, passphrase = null) {
  const withPassphrase = needsPassphrase(envelope);
  if (withPassphrase && passphrase === null) {
    throw new EnvelopeError("passphrase-required", "This secret needs its passphrase.");
  }
  if (!withPassphrase && passphrase !== null) {
    throw new EnvelopeError("no-passphrase-expected", "This secret was not sent with a passphrase.");
  }
  const prefix = withPassphrase ? PREFIX_PASSPHRASE : PREFIX;
  const headerLen = withPassphrase ? SALT_LEN + NONCE_LEN : NONCE_LEN;
  const bytes = decodeBase64url(envelope.slice(prefix.length));
  if (bytes === null) throw new EnvelopeError("damaged", "This secret is damaged: it is not base64url.");
  if (bytes.length < headerLen + TAG_LEN) {
    throw new EnvelopeError("damaged", "This secret is damaged: it is too short.");
  }
  const salt = bytes.slice(0, headerLen - NONCE_LEN);
  const nonce = bytes.slice(headerLen - NONCE_LEN, headerLen);
  const aes = await cipherKey(key, passphrase, salt);
  try {
    return new Uint8Array(await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: nonce, additionalData: aadOf(prefix) }, aes, bytes.slice(headerLen)));
  } catch {
    throw new EnvelopeError("cannot-decrypt",
      withPassphrase
        ? "Cannot decrypt: the passphrase is wrong, or the link or secret was changed."
        : "Cannot decrypt: the link's key is wrong, or the secret was changed.");
  }
}
