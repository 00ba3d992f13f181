// The reveal page. Loading it touches nothing on the server: only the reveal button fetches the
// secret (and so spends one of its views; the last destroys it). Decryption happens here, with the key from the link's fragment.
import { decodeFragment, needsPassphrase, open, openFile, isFileEnvelope, safeFileName, EnvelopeError } from "./envelope.js";

const $ = (id) => document.getElementById(id);
const status = $("status");
const error = $("error");

// The link is {base}/s/{id}#{key}: the API is at {base}/{id}.
const match = /^(.*)\/s\/([A-Za-z0-9]+)\/?$/.exec(location.pathname);
const id = match ? match[2] : null;
const apiUrl = match ? new URL(`${match[1]}/${id}`, location.origin) : null;

let fragment = null;
let envelope = null; // kept after the fetch, so a mistyped passphrase can be tried again
let viewsLeft = 0; // what the read said: views left after it

function fail(message) {
  error.textContent = message;
  error.hidden = false;
  status.textContent = "";
}

function show(text, encrypted) {
  $("secret").value = text;
  // With views left, the link still opens it; the last view destroyed it.
  $("burned").hidden = viewsLeft > 0;
  $("views-left").hidden = viewsLeft === 0;
  $("views-left").textContent = viewsLeft === 1
    ? "The link can open it 1 more time; then it is destroyed on the server."
    : `The link can open it ${viewsLeft} more times; then it is destroyed on the server.`;
  $("plain-warning").hidden = encrypted;
  $("reveal-form").hidden = true;
  $("intro").hidden = true;
  $("no-key").hidden = true;
  $("revealed").hidden = false;
  error.hidden = true;
  status.textContent = "";
  $("revealed-title").focus();
}

function size(bytes) {
  if (bytes >= 1048576) return `${(bytes / 1048576).toFixed(1).replace(/\.0$/, "")} MB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
  return bytes === 1 ? "1 byte" : `${bytes} bytes`;
}

let saved = null; // { url, name }: the file, once opened, for the Save button

function showFile(meta, file, encrypted) {
  const name = safeFileName(meta.name);
  if (saved) URL.revokeObjectURL(saved.url);
  saved = { url: URL.createObjectURL(new Blob([file], { type: meta.type || "application/octet-stream" })), name };
  $("file-name").textContent = name;
  $("file-size").textContent = `(${size(file.length)})`;
  $("file-note-box").hidden = meta.note === "";
  $("file-note").textContent = meta.note;
  $("file-burned").hidden = viewsLeft > 0;
  $("file-views-left").hidden = viewsLeft === 0;
  $("file-views-left").textContent = viewsLeft === 1
    ? "The link can open it 1 more time; then it is destroyed on the server."
    : `The link can open it ${viewsLeft} more times; then it is destroyed on the server.`;
  $("file-plain-warning").hidden = encrypted;
  $("reveal-form").hidden = true;
  $("intro").hidden = true;
  $("no-key").hidden = true;
  $("revealed-file").hidden = false;
  error.hidden = true;
  status.textContent = "";
  $("file-title").focus();
}

function saveFile() {
  if (!saved) return;
  const a = document.createElement("a");
  a.href = saved.url;
  a.download = saved.name;
  document.body.append(a);
  a.click();
  a.remove();
}

/** A file's bytes, read as they arrive, with the progress shown. */
async function download(resp) {
  const total = Number(resp.headers.get("Content-Length")) || 0;
  const progress = $("progress");
  if (!resp.body || !resp.body.getReader) return new Uint8Array(await resp.arrayBuffer());
  const reader = resp.body.getReader();
  const pieces = [];
  let received = 0;
  progress.hidden = total === 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    pieces.push(value);
    received += value.length;
    if (total > 0) {
      progress.value = Math.floor((100 * received) / total);
      status.textContent = `Downloading… ${progress.value}%`;
    }
  }
  progress.hidden = true;
  if (total > 0 && received !== total) throw new Error("cut");
  const bytes = new Uint8Array(received);
  pieces.reduce((at, p) => (bytes.set(p, at), at + p.length), 0);
  return bytes;
}

function setUp() {
  if (!id) {
    $("reveal").disabled = true;
    return fail("This is not a complete share link.");
  }
  if (location.hash === "" || location.hash === "#") {
    $("no-key").hidden = false;
    $("reveal").textContent = "Reveal it anyway";
    return;
  }
  try {
    fragment = decodeFragment(location.hash);
    $("passphrase-box").hidden = !fragment.passphrase;
  } catch (e) {
    $("reveal").disabled = true;
    fail(`${e.message} Ask the sender for the whole link. Nothing was fetched, so the secret is still there.`);
  }
}

async function fetchEnvelope() {
  status.textContent = "Fetching…";
  let resp;
  try {
    resp = await fetch(apiUrl, { headers: { Accept: "application/json" }, cache: "no-store" });
  } catch {
    throw new Error("Could not reach the service (the network, or the service, is down). Try again: if it then says the secret was already read, it was lost on the way.");
  }
  const isFile = (resp.headers.get("Content-Type") || "").startsWith("application/octet-stream");
  if (resp.ok && isFile) {
    viewsLeft = Number(resp.headers.get("X-Views-Left")) || 0;
    try {
      return await download(resp);
    } catch {
      throw new Error("The service's answer was cut off on its way here. The secret is probably destroyed on the server and cannot be shown: ask the sender for a new one.");
    }
  }
  const body = await resp.json().catch(() => null);
  if (resp.status === 404) {
    throw new Error("This secret was already read, or it expired. It cannot be shown again.");
  }
  if (resp.status === 429) {
    const wait = resp.headers.get("Retry-After");
    throw new Error(`Too many requests from here${wait ? `; try again in ${wait} s` : ""}. The secret is still there.`);
  }
  if (resp.ok) {
    if (body && typeof body.message === "string") {
      viewsLeft = Number.isInteger(body.views_left) && body.views_left > 0 ? body.views_left : 0;
      return body.message;
    }
    // The service answered the read, so the secret is gone there; it never arrived here.
    throw new Error("The service's answer was cut off on its way here. The secret is probably destroyed on the server and cannot be shown: ask the sender for a new one.");
  }
  throw new Error(`The service could not answer (${(body && body.error) || `HTTP ${resp.status}`}); the secret is still there. Try again later.`);
}

async function reveal(event) {
  event.preventDefault();
  error.hidden = true;
  const passphraseField = $("passphrase");
  if (fragment && fragment.passphrase && passphraseField.value === "") {
    passphraseField.focus();
    return fail("Type the passphrase first.");
  }
  $("reveal").disabled = true;
  try {
    if (envelope === null) envelope = await fetchEnvelope();
    if (envelope instanceof Uint8Array) {
      if (!isFileEnvelope(envelope)) return showFile({ name: "", type: "", note: "" }, envelope, false);
      if (!fragment) {
        throw new EnvelopeError("no-key", "This file is encrypted and the link has no key: it cannot be opened, and it is now destroyed on the server.");
      }
      status.textContent = fragment.passphrase ? "Decrypting (the passphrase takes a moment)…" : "Decrypting…";
      const opened = await openFile(envelope, fragment.key, fragment.passphrase ? passphraseField.value : null);
      return showFile(opened.meta, opened.file, true);
    }
    let encrypted = true;
    try {
      needsPassphrase(envelope);
    } catch (e) {
      if (e instanceof EnvelopeError && e.kind === "not-an-envelope") encrypted = false;
      else throw e;
    }
    if (!encrypted) return show(envelope, false);
    if (!fragment) {
      throw new EnvelopeError("no-key", "This secret is encrypted and the link has no key: it cannot be shown, and it is now destroyed on the server.");
    }
    status.textContent = fragment.passphrase ? "Decrypting (the passphrase takes a moment)…" : "Decrypting…";
    const plaintext = await open(envelope, fragment.key, fragment.passphrase ? passphraseField.value : null);
    show(new TextDecoder("utf-8", { fatal: false }).decode(plaintext), true);
  } catch (e) {
    if (e instanceof EnvelopeError && e.kind === "passphrase-required" && fragment) {
      // The link did not say so, but the secret has a passphrase: ask for it, and keep the
      // fetched secret in this page.
      fragment.passphrase = true;
      $("passphrase-box").hidden = false;
      passphraseField.focus();
      return fail("This secret needs its passphrase. It is held in this page (it is gone from the server): type the passphrase and press the button again.");
    }
    if (e instanceof EnvelopeError && e.kind === "cannot-decrypt" && fragment && fragment.passphrase) {
      $("reveal").textContent = "Try the passphrase again";
      passphraseField.select();
      return fail("Wrong passphrase. The secret is held in this page (it is gone from the server): try again, and do not reload.");
    }
    if (envelope !== null && e instanceof EnvelopeError) {
      return fail(`${e.message} It is now destroyed on the server.`);
    }
    fail(e.message);
  } finally {
    $("reveal").disabled = false;
  }
}

async function copySecret() {
  const button = $("copy-secret");
  try {
    await navigator.clipboard.writeText($("secret").value);
  } catch {
    $("secret").select();
    document.execCommand("copy");
  }
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = "Copy secret"; }, 1500);
}

setUp();
$("reveal-form").addEventListener("submit", reveal);
$("save-file").addEventListener("click", saveFile);
$("copy-secret").addEventListener("click", copySecret);
