// The reveal page. Loading it touches nothing on the server: only the reveal button fetches the
// secret (and so spends one of its views; the last destroys it). Decryption happens here, with the key from the link's fragment.
import { decodeFragment, needsPassphrase, open, openFile, isFileEnvelope, safeFileName, EnvelopeError } from "./envelope.js";
import { t, size, start, onChange, envelopeMessage } from "./i18n.js";

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

/**
 * Shows what was revealed: `section` (the text's, or the file's), its notes named `prefix` + burned,
 * views-left and plain-warning, in place of the form; focus on `title`.
 */
function revealDone(section, prefix, title, encrypted) {
  // With views left, the link still opens it; the last view destroyed it.
  $(`${prefix}burned`).hidden = viewsLeft > 0;
  $(`${prefix}views-left`).hidden = viewsLeft === 0;
  $(`${prefix}views-left`).textContent = t("reveal.viewsLeft", { count: viewsLeft });
  $(`${prefix}plain-warning`).hidden = encrypted;
  $("reveal-form").hidden = true;
  $("intro").hidden = true;
  $("no-key").hidden = true;
  $(section).hidden = false;
  error.hidden = true;
  status.textContent = "";
  $(title).focus();
}

function show(text, encrypted) {
  $("secret").value = text;
  revealDone("revealed", "", "revealed-title", encrypted);
}

let saved = null; // { url, name, bytes }: the file, once opened, for the Save button

function showFile(meta, file, encrypted) {
  const name = safeFileName(meta.name);
  if (saved) URL.revokeObjectURL(saved.url);
  saved = { url: URL.createObjectURL(new Blob([file], { type: meta.type || "application/octet-stream" })), name, bytes: file.length };
  $("file-name").textContent = name;
  $("file-size").textContent = `(${size(file.length)})`;
  $("file-note-box").hidden = meta.note === "";
  $("file-note").textContent = meta.note;
  revealDone("revealed-file", "file-", "file-title", encrypted);
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
      status.textContent = t("reveal.downloading", { percent: progress.value });
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
    return fail(t("reveal.notALink"));
  }
  if (location.hash === "" || location.hash === "#") {
    $("no-key").hidden = false;
    setRevealLabel("reveal.revealAnyway");
    return;
  }
  try {
    fragment = decodeFragment(location.hash);
    $("passphrase-box").hidden = !fragment.passphrase;
  } catch (e) {
    $("reveal").disabled = true;
    fail(t("reveal.badLink", { why: envelopeMessage(e) }));
  }
}

async function fetchEnvelope() {
  status.textContent = t("reveal.fetching");
  let resp;
  try {
    resp = await fetch(apiUrl, { headers: { Accept: "application/json" }, cache: "no-store" });
  } catch {
    throw new Error(t("reveal.unreachable"));
  }
  const isFile = (resp.headers.get("Content-Type") || "").startsWith("application/octet-stream");
  if (resp.ok && isFile) {
    viewsLeft = Number(resp.headers.get("X-Views-Left")) || 0;
    try {
      return await download(resp);
    } catch {
      throw new Error(t("reveal.cutOff"));
    }
  }
  const body = await resp.json().catch(() => null);
  if (resp.status === 404) {
    throw new Error(t("reveal.gone"));
  }
  if (resp.status === 429) {
    const wait = resp.headers.get("Retry-After");
    throw new Error(wait ? t("reveal.tooManyWait", { wait: Number(wait) }) : t("reveal.tooMany"));
  }
  if (resp.ok) {
    if (body && typeof body.message === "string") {
      viewsLeft = Number.isInteger(body.views_left) && body.views_left > 0 ? body.views_left : 0;
      return body.message;
    }
    // The service answered the read, so the secret is gone there; it never arrived here.
    throw new Error(t("reveal.cutOff"));
  }
  throw new Error(t("reveal.serviceFailed", { why: (body && body.error) || `HTTP ${resp.status}` }));
}

async function reveal(event) {
  event.preventDefault();
  error.hidden = true;
  const passphraseField = $("passphrase");
  if (fragment && fragment.passphrase && passphraseField.value === "") {
    passphraseField.focus();
    return fail(t("reveal.typePassphrase"));
  }
  $("reveal").disabled = true;
  try {
    if (envelope === null) envelope = await fetchEnvelope();
    if (envelope instanceof Uint8Array) {
      if (!isFileEnvelope(envelope)) return showFile({ name: "", type: "", note: "" }, envelope, false);
      if (!fragment) {
        throw new Error(t("reveal.fileNoKey"));
      }
      status.textContent = fragment.passphrase ? t("reveal.decryptingSlow") : t("reveal.decrypting");
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
      throw new Error(t("reveal.noKeyEncrypted"));
    }
    status.textContent = fragment.passphrase ? t("reveal.decryptingSlow") : t("reveal.decrypting");
    const plaintext = await open(envelope, fragment.key, fragment.passphrase ? passphraseField.value : null);
    show(new TextDecoder("utf-8", { fatal: false }).decode(plaintext), true);
  } catch (e) {
    if (e instanceof EnvelopeError && e.kind === "passphrase-required" && fragment) {
      // The link did not say so, but the secret has a passphrase: ask for it, and keep the
      // fetched secret in this page.
      fragment.passphrase = true;
      $("passphrase-box").hidden = false;
      passphraseField.focus();
      return fail(t("reveal.needsPassphrase"));
    }
    if (e instanceof EnvelopeError && e.kind === "cannot-decrypt" && fragment && fragment.passphrase) {
      setRevealLabel("reveal.tryAgain");
      passphraseField.select();
      return fail(t("reveal.wrongPassphrase"));
    }
    if (envelope !== null && e instanceof EnvelopeError) {
      return fail(t("reveal.destroyedAfter", { why: envelopeMessage(e) }));
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
  button.textContent = t("common.copied");
  setTimeout(() => { button.textContent = t("reveal.copySecret"); }, 1500);
}

/** The reveal button's label, by its key: said again when the language changes. */
let revealLabel = "reveal.reveal";

function setRevealLabel(key) {
  revealLabel = key;
  $("reveal").textContent = t(key);
}

/** The texts this page composes, in the language in use. */
function relabel() {
  setRevealLabel(revealLabel);
  $("views-left").textContent = t("reveal.viewsLeft", { count: viewsLeft });
  $("file-views-left").textContent = t("reveal.viewsLeft", { count: viewsLeft });
  if (saved) $("file-size").textContent = `(${size(saved.bytes)})`;
}

await start($("language"));
onChange(relabel);
setUp();
$("reveal-form").addEventListener("submit", reveal);
$("save-file").addEventListener("click", saveFile);
$("copy-secret").addEventListener("click", copySecret);
