// The page's envelope module against docs/envelope-vectors.json (made by the Rust crate), with
// Node's WebCrypto: the two implementations must agree byte for byte.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as env from "../assets/envelope.js";

const { vectors } = JSON.parse(readFileSync(new URL("../../docs/envelope-vectors.json", import.meta.url)));
const hex = (s) => Uint8Array.from(s.match(/../g).map((b) => parseInt(b, 16)));
const text = (bytes) => new TextDecoder().decode(bytes);
const bytes = (s) => new TextEncoder().encode(s);

test("the documented vectors seal and open exactly", async () => {
  assert.ok(vectors.length >= 4);
  for (const v of vectors) {
    const key = env.decodeBase64url(v.key);
    const sealed = await env.seal(bytes(v.plaintext), key, v.passphrase, { salt: hex(v.salt_hex), nonce: hex(v.nonce_hex) });
    assert.equal(sealed, v.envelope, v.name);
    assert.equal(text(await env.open(v.envelope, key, v.passphrase)), v.plaintext, v.name);
  }
});

test("a decomposed passphrase opens what a composed one sealed", async () => {
  const key = env.generateKey();
  const sealed = await env.seal(bytes("x"), key, "p\u00e4ssw\u00f6rd");
  assert.equal(text(await env.open(sealed, key, "pa\u0308sswo\u0308rd")), "x");
});

test("every kind of damage is refused with its kind", async () => {
  const key = env.generateKey();
  const plain = await env.seal(bytes("secret"), key);
  const locked = await env.seal(bytes("secret"), key, "hunter2");
  const kind = async (promise) => (await promise.then(() => "opened", (e) => e.kind));
  const body = env.decodeBase64url(plain.slice(env.PREFIX.length));
  for (let i = 0; i < body.length; i++) {
    const flipped = body.slice();
    flipped[i] ^= 1;
    assert.equal(await kind(env.open(env.PREFIX + env.encodeBase64url(flipped), key)), "cannot-decrypt", `byte ${i}`);
  }
  assert.equal(await kind(env.open(plain, env.generateKey())), "cannot-decrypt");
  assert.equal(await kind(env.open(locked, key, "hunter3")), "cannot-decrypt");
  assert.equal(await kind(env.open(locked, key)), "passphrase-required");
  assert.equal(await kind(env.open(plain, key, "hunter2")), "no-passphrase-expected");
  assert.equal(await kind(env.open(locked.replace(env.PREFIX_PASSPHRASE, env.PREFIX), key)), "cannot-decrypt");
  assert.equal(await kind(env.open("crypt2:AAAA", key)), "unknown-version");
  assert.equal(await kind(env.open("crypt1:***", key)), "damaged");
  assert.equal(await kind(env.open("crypt1:AAAA", key)), "damaged");
  assert.equal(await kind(env.open("just text", key)), "not-an-envelope");
});

test("fragments are read strictly", () => {
  const key = env.generateKey();
  const f = env.encodeFragment(key, true);
  assert.equal(f.length, 45);
  assert.deepEqual(env.decodeFragment("#" + f), { key, passphrase: true });
  const bare = env.encodeFragment(key, false);
  const kind = (s) => { try { env.decodeFragment(s); return "ok"; } catch (e) { return e.kind; } };
  assert.equal(kind(bare.slice(0, 42)), "bad-key");
  assert.equal(kind(bare + "AA"), "bad-key");
  assert.equal(kind(""), "no-key");
  assert.equal(kind("#"), "no-key");
  assert.equal(kind(bare.replace(/[A-Za-z]/g, "+")), "bad-key");
});

test("the largest plaintext fits 102,400 bytes and one more does not", async () => {
  const key = env.generateKey();
  const fits = await env.seal(new Uint8Array(env.MAX_PLAINTEXT), key, "p");
  assert.ok(fits.length <= 102400);
  const over = await env.seal(new Uint8Array(env.MAX_PLAINTEXT + 1), key, "p");
  assert.ok(over.length > 102400);
});

const { file_vectors: fileVectors } = JSON.parse(readFileSync(new URL("../../docs/envelope-vectors.json", import.meta.url)));
const pattern = (n) => Uint8Array.from({ length: n }, (_, i) => (i * 7) % 251);
const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const sha256 = async (b) => toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", b)));

test("the documented file vectors seal and open exactly", async () => {
  assert.ok(fileVectors.length >= 4);
  for (const v of fileVectors) {
    const key = env.decodeBase64url(v.key);
    const file = v.file !== undefined ? bytes(v.file) : pattern(v.pattern_length);
    const fixed = { salt: hex(v.salt_hex), fileNonce: hex(v.file_nonce_hex) };
    const sealed = await env.sealFile(file, v.meta, key, v.passphrase, fixed);
    assert.equal(sealed.length, v.envelope_length, v.name);
    assert.equal(env.sealedFileLength(file.length, v.meta, v.passphrase !== null), v.envelope_length, v.name);
    if (v.envelope_hex !== undefined) assert.equal(toHex(sealed), v.envelope_hex, v.name);
    else assert.equal(await sha256(sealed), v.envelope_sha256, v.name);
    const opened = await env.openFile(sealed, key, v.passphrase);
    assert.deepEqual(opened.meta, v.meta, v.name);
    assert.deepEqual(opened.file, file, v.name);
  }
});

test("a file cut short, reordered, spliced or altered is refused", async () => {
  const key = env.generateKey();
  const meta = { name: "a.bin", type: "", note: "" };
  const file = pattern(3 * env.CHUNK);
  const sealed = await env.sealFile(file, meta, key);
  const head = env.FILE_MAGIC.length + 1 + env.FILE_NONCE_LEN;
  const piece = env.CHUNK + env.TAG_LEN;
  const kind = async (b, p = null) => env.openFile(b, key, p).then(() => "opened", (e) => e.kind);
  assert.equal(await kind(sealed.slice(0, head + 2 * piece)), "damaged", "cut at a piece boundary");
  assert.equal(await kind(sealed.slice(0, sealed.length - 1)), "damaged", "cut inside a piece");
  const swapped = sealed.slice();
  swapped.set(sealed.subarray(head + 2 * piece, head + 3 * piece), head + piece);
  swapped.set(sealed.subarray(head + piece, head + 2 * piece), head + 2 * piece);
  assert.equal(await kind(swapped), "damaged", "two pieces swapped");
  const other = await env.sealFile(file, meta, key);
  const spliced = sealed.slice();
  spliced.set(other.subarray(head + piece, head + 2 * piece), head + piece);
  assert.equal(await kind(spliced), "damaged", "a piece of another file");
  const flipped = sealed.slice();
  flipped[flipped.length - 1] ^= 1;
  assert.equal(await kind(flipped), "damaged");
  assert.equal(await env.openFile(sealed, env.generateKey()).then(() => "opened", (e) => e.kind), "cannot-decrypt");
  assert.equal(await kind(sealed, "p"), "no-passphrase-expected");
  assert.equal(await kind(bytes("crypt1:abc")), "not-an-envelope");
  const locked = await env.sealFile(bytes("x"), meta, key, "right");
  assert.equal(await kind(locked), "passphrase-required");
  assert.equal(await kind(locked, "wrong"), "cannot-decrypt");
  assert.deepEqual((await env.openFile(locked, key, "right")).file, bytes("x"));
});

test("a received file's name is made safe, as the CLI makes it", () => {
  for (const [given, safe] of [
    ["report.pdf", "report.pdf"], ["../x", "x"], ["/etc/passwd", "passwd"], ["..\\..\\win.ini", "win.ini"],
    ["a\u0007b\nc\u001b[31m.txt", "abc[31m.txt"], ["", "crypt-file"], ["..", "crypt-file"], ["dir/", "crypt-file"],
    [" \t", "crypt-file"], [".env", ".env"],
  ]) {
    assert.equal(env.safeFileName(given), safe, JSON.stringify(given));
  }
  assert.ok(env.safeFileName("é".repeat(300)).length <= 200);
});
