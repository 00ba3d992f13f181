// The crypt envelope, version 1 (text) and 2 (files), with WebCrypto: docs/ENVELOPE.md says it byte by byte, and
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

/**
 * Why a secret could not be sealed or opened; `kind` is stable, `message` is for people (in
 * English), and `code` names that sentence in the page's catalogues (`locales/*.js`, under
 * `envelope.<code>`), with `vars` for its placeholders.
 */
export class EnvelopeError extends Error {
  constructor(kind, message, code = kind, vars = {}) {
    super(message);
    this.kind = kind;
    this.code = code;
    this.vars = vars;
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
  if (text === "") throw new EnvelopeError("no-key", "This link has no key (the part after #).", "noKey");
  const key = decodeBase64url(text);
  if (key === null || key.length !== 32) {
    throw new EnvelopeError("bad-key", "This link's key is damaged: it was cut short or changed.", "badKey");
  }
  return { key, passphrase };
}

/** The raw AES key: the link's key, or with a passphrase the link's key mixed with PBKDF2's. */
async function rawCipherKey(key, passphrase, salt) {
  let raw = key;
  if (passphrase !== null) {
    const password = new TextEncoder().encode(passphrase.normalize("NFC"));
    const base = await crypto.subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
    const derived = await crypto.subtle.deriveBits(
      { name: "PBKDF2", salt, iterations: ITERATIONS, hash: "SHA-256" }, base, 256);
    const mac = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    raw = new Uint8Array(await crypto.subtle.sign("HMAC", mac, derived));
  }
  return raw;
}

async function cipherKey(key, passphrase, salt) {
  return crypto.subtle.importKey("raw", await rawCipherKey(key, passphrase, salt), "AES-GCM", false,
    ["encrypt", "decrypt"]);
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
      `This secret was sealed with envelope version '${version[1]}', which this page does not know.`,
      "unknownVersion", { version: version[1] });
  }
  throw new EnvelopeError("not-an-envelope", "This secret is not end-to-end encrypted.", "notAnEnvelope");
}

/** Opens an envelope; returns the plaintext bytes, or throws: never a half-decrypted secret. */
export async function open(envelope, key, passphrase = null) {
  const withPassphrase = needsPassphrase(envelope);
  if (withPassphrase && passphrase === null) {
    throw new EnvelopeError("passphrase-required", "This secret needs its passphrase.", "passphraseRequired");
  }
  if (!withPassphrase && passphrase !== null) {
    throw new EnvelopeError("no-passphrase-expected", "This secret was not sent with a passphrase.", "noPassphraseExpected");
  }
  const prefix = withPassphrase ? PREFIX_PASSPHRASE : PREFIX;
  const headerLen = withPassphrase ? SALT_LEN + NONCE_LEN : NONCE_LEN;
  const bytes = decodeBase64url(envelope.slice(prefix.length));
  if (bytes === null) throw new EnvelopeError("damaged", "This secret is damaged: it is not base64url.", "notBase64");
  if (bytes.length < headerLen + TAG_LEN) {
    throw new EnvelopeError("damaged", "This secret is damaged: it is too short.", "tooShort");
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
        : "Cannot decrypt: the link's key is wrong, or the secret was changed.",
      withPassphrase ? "cannotDecryptPassphrase" : "cannotDecrypt");
  }
}

// ---- Files: the envelope's version 2 (docs/ENVELOPE.md, "Files") ----

export const FILE_MAGIC = "crypt2f";
/** Bytes of plaintext in every piece but the last. */
export const CHUNK = 65536;
export const FILE_NONCE_LEN = 16;
/** The most bytes the name, type and note may take together. */
export const MAX_META = 65536;
const FILE_INFO = new TextEncoder().encode("crypt2f payload");

function fileHeader(salt, fileNonce) {
  const magic = new TextEncoder().encode(FILE_MAGIC);
  const head = new Uint8Array(magic.length + 1 + (salt ? SALT_LEN : 0) + FILE_NONCE_LEN);
  head.set(magic, 0);
  head[magic.length] = salt ? 1 : 0;
  if (salt) head.set(salt, magic.length + 1);
  head.set(fileNonce, head.length - FILE_NONCE_LEN);
  return head;
}

/** `u16 name ‖ name ‖ u16 type ‖ type ‖ u32 note ‖ note`, big-endian lengths, UTF-8. */
function encodeMeta({ name = "", type = "", note = "" }) {
  const enc = new TextEncoder();
  const [n, t, m] = [enc.encode(name), enc.encode(type), enc.encode(note)];
  if (n.length > 0xffff || t.length > 0xffff || 8 + n.length + t.length + m.length > MAX_META) {
    throw new EnvelopeError("too-long", "The file's name, type and note are too long.", "metaTooLong");
  }
  const out = new Uint8Array(8 + n.length + t.length + m.length);
  const view = new DataView(out.buffer);
  let at = 0;
  view.setUint16(at, n.length); out.set(n, at + 2); at += 2 + n.length;
  view.setUint16(at, t.length); out.set(t, at + 2); at += 2 + t.length;
  view.setUint32(at, m.length); out.set(m, at + 4);
  return out;
}

function decodeMeta(bytes) {
  const bad = () => new EnvelopeError("damaged", "This file is damaged: its name, type or note is malformed.", "fileMeta");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dec = new TextDecoder("utf-8", { fatal: true });
  let at = 0;
  const take = (width) => {
    if (at + width > bytes.length) throw bad();
    const len = width === 2 ? view.getUint16(at) : view.getUint32(at);
    if (at + width + len > bytes.length) throw bad();
    const piece = bytes.subarray(at + width, at + width + len);
    at += width + len;
    try { return dec.decode(piece); } catch { throw bad(); }
  };
  const meta = { name: take(2), type: take(2), note: take(4) };
  if (at !== bytes.length) throw bad();
  return meta;
}

async function fileKey(ikm, fileNonce) {
  const base = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey({ name: "HKDF", hash: "SHA-256", salt: fileNonce, info: FILE_INFO }, base,
    { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

function pieceNonce(counter, last) {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(3, BigInt(counter));
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** The sealed size of a file of `fileBytes` with `meta`: what counts against the service's limit. */
export function sealedFileLength(fileBytes, meta, passphrase) {
  // A passphrase (any string, even empty) or `true`: the header holds a salt.
  const salted = typeof passphrase === "string" || passphrase === true;
  const stream = 4 + encodeMeta(meta).length + fileBytes;
  const pieces = Math.max(1, Math.ceil(stream / CHUNK));
  return FILE_MAGIC.length + 1 + FILE_NONCE_LEN + (salted ? SALT_LEN : 0) + stream + pieces * TAG_LEN;
}

/**
 * Seals a file (bytes) with its `meta` ({name, type, note}) under `key` and, if not null,
 * `passphrase`: the header, then each 64 KiB piece. `fixed` ({salt, fileNonce}) is for test
 * vectors only.
 */
export async function sealFile(file, meta, key, passphrase = null, fixed = null) {
  const salt = passphrase === null ? null : (fixed ? fixed.salt : crypto.getRandomValues(new Uint8Array(SALT_LEN)));
  const fileNonce = fixed ? fixed.fileNonce : crypto.getRandomValues(new Uint8Array(FILE_NONCE_LEN));
  const header = fileHeader(salt, fileNonce);
  const aes = await fileKey(await rawCipherKey(key, passphrase, salt), fileNonce);
  const m = encodeMeta(meta);
  const stream = new Uint8Array(4 + m.length + file.length);
  new DataView(stream.buffer).setUint32(0, m.length);
  stream.set(m, 4);
  stream.set(file, 4 + m.length);
  const pieces = Math.max(1, Math.ceil(stream.length / CHUNK));
  const out = new Uint8Array(header.length + stream.length + pieces * TAG_LEN);
  out.set(header, 0);
  let at = header.length;
  for (let i = 0; i < pieces; i++) {
    const piece = stream.subarray(i * CHUNK, Math.min(stream.length, (i + 1) * CHUNK));
    const sealed = new Uint8Array(await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: pieceNonce(i, i === pieces - 1), additionalData: header }, aes, piece));
    out.set(sealed, at);
    at += sealed.length;
  }
  return out;
}

/** True when `bytes` begin like a file envelope. */
export function isFileEnvelope(bytes) {
  const magic = new TextEncoder().encode(FILE_MAGIC);
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}

/**
 * Opens a file envelope: `{ meta, file }`, or throws at the first piece that does not
 * authenticate (a wrong key or passphrase, a file cut short, reordered or altered): never part
 * of a file.
 */
export async function openFile(bytes, key, passphrase = null) {
  if (!isFileEnvelope(bytes) || bytes.length < FILE_MAGIC.length + 1) {
    throw new EnvelopeError("not-an-envelope", "This is not an encrypted file.", "notAFile");
  }
  const mode = bytes[FILE_MAGIC.length];
  if (mode > 1) throw new EnvelopeError("unknown-version", "This file was sealed in a mode this page does not know.", "fileUnknownMode");
  const withPassphrase = mode === 1;
  if (withPassphrase && passphrase === null) {
    throw new EnvelopeError("passphrase-required", "This file needs its passphrase.", "filePassphraseRequired");
  }
  if (!withPassphrase && passphrase !== null) {
    throw new EnvelopeError("no-passphrase-expected", "This file was not sent with a passphrase.", "fileNoPassphraseExpected");
  }
  const headLen = FILE_MAGIC.length + 1 + (withPassphrase ? SALT_LEN : 0) + FILE_NONCE_LEN;
  if (bytes.length < headLen) throw new EnvelopeError("damaged", "This file is damaged: it was cut short.", "fileCut");
  const header = bytes.subarray(0, headLen);
  const salt = withPassphrase ? header.subarray(FILE_MAGIC.length + 1, FILE_MAGIC.length + 1 + SALT_LEN) : null;
  const aes = await fileKey(await rawCipherKey(key, passphrase, salt), header.subarray(headLen - FILE_NONCE_LEN));
  const pieces = [];
  let at = headLen;
  for (let i = 0; ; i++) {
    const end = Math.min(bytes.length, at + CHUNK + TAG_LEN);
    const last = end === bytes.length;
    if (end - at <= TAG_LEN) throw new EnvelopeError("damaged", "This file is damaged: it was cut short.", "fileCut");
    try {
      pieces.push(new Uint8Array(await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: pieceNonce(i, last), additionalData: header }, aes, bytes.subarray(at, end))));
    } catch {
      throw i === 0
        ? new EnvelopeError("cannot-decrypt", "Cannot decrypt: the link's key or the passphrase is wrong, or the file was changed.", "fileCannotDecrypt")
        : new EnvelopeError("damaged", "This file is damaged: a piece is missing, out of order or changed.", "filePiece");
    }
    at = end;
    if (last) break;
  }
  const stream = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  pieces.reduce((offset, p) => (stream.set(p, offset), offset + p.length), 0);
  const damaged = () => new EnvelopeError("damaged", "This file is damaged: its name, type or note is malformed.", "fileMeta");
  if (stream.length < 4) throw damaged();
  const metaLen = new DataView(stream.buffer).getUint32(0);
  if (metaLen > MAX_META || 4 + metaLen > stream.length) throw damaged();
  return { meta: decodeMeta(stream.subarray(4, 4 + metaLen)), file: stream.slice(4 + metaLen) };
}

/**
 * A name safe to save a received file under, as the CLI makes it: the sender's name's last path
 * component (so `../x` and `/etc/passwd` stay where they are saved), without control
 * characters, at most 200 characters; an empty name, `.` or `..` become `crypt-file`.
 */
export function safeFileName(name) {
  // eslint-disable-next-line no-control-regex
  const last = String(name).split(/[\\/]/).pop().replace(/[\u0000-\u001f\u007f-\u009f]/g, "").trim();
  return last === "" || last === "." || last === ".." ? "crypt-file" : last.slice(0, 200);
}
