// The compose page: encrypt in the browser, store the envelope, show the link with its key.
import { generateKey, seal, sealFile, sealedFileLength, encodeFragment, MAX_PLAINTEXT } from "./envelope.js";
import { drawQr } from "./qr.js";
import { t, size, when, start, onChange } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const form = $("compose");
const status = $("status");
const error = $("error");

function fail(message) {
  error.textContent = message;
  error.hidden = false;
  status.textContent = "";
}

/** The service's base URL: this page is its root. */
const base = new URL(".", location.href);
/** The largest file the service takes, sealed (its CRYPT_MAX_FILE_BYTES). */
const maxFileBytes = Number(form.dataset.maxFileBytes) || 10485760;
const fileField = $("file");

/** The file chosen, or null. */
function chosenFile() {
  return fileField.files && fileField.files.length > 0 ? fileField.files[0] : null;
}

/** With a file, the text becomes its note; without, the secret. */
function fileChanged() {
  const file = chosenFile();
  $("secret-label").textContent = file ? t("compose.note") : t("compose.secret");
  $("secret-help").textContent = file ? t("compose.noteHelp") : t("compose.secretHelp", { max: MAX_PLAINTEXT });
  $("file-chosen").hidden = file === null;
  $("clear-file").hidden = file === null;
  error.hidden = true;
  if (file === null) return;
  $("file-chosen").textContent = t("compose.fileChosen", { name: file.name, size: size(file.size) });
  const sealed = sealedFileLength(file.size, { name: file.name, type: file.type, note: "" }, false);
  if (sealed > maxFileBytes) {
    fail(t("compose.fileTooLarge", { name: file.name, size: size(file.size), max: size(maxFileBytes) }));
  }
}

/** POSTs `body` with its upload's progress shown; resolves to { status, body, retryAfter }. */
function upload(url, body, contentType) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("Content-Type", contentType);
    xhr.setRequestHeader("Accept", "application/json");
    const progress = $("progress");
    progress.hidden = false;
    progress.value = 0;
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      const percent = Math.floor((100 * e.loaded) / e.total);
      progress.value = percent;
      status.textContent = t("compose.uploadingPercent", { percent });
    };
    xhr.onload = () => {
      progress.hidden = true;
      let parsed = {};
      try { parsed = JSON.parse(xhr.responseText); } catch { parsed = {}; }
      resolve({ status: xhr.status, body: parsed, retryAfter: xhr.getResponseHeader("Retry-After") });
    };
    xhr.onerror = () => { progress.hidden = true; reject(new Error("network")); };
    xhr.send(body);
  });
}

async function create(event) {
  event.preventDefault();
  error.hidden = true;
  const secret = $("secret").value;
  const passphrase = $("passphrase").value;
  const plaintext = new TextEncoder().encode(secret);
  const viewsField = $("views");
  const views = Number(viewsField.value);
  const maxViews = Number(viewsField.max);
  const file = chosenFile();
  if (secret.trim() === "" && file === null) return fail(t("compose.writeFirst"));
  if (!Number.isInteger(views) || views < 1 || views > maxViews) {
    viewsField.focus();
    return fail(t("compose.viewsRange", { max: maxViews }));
  }
  if (file !== null) {
    const meta = { name: file.name, type: file.type, note: secret };
    const sealed = sealedFileLength(file.size, meta, passphrase === "" ? null : passphrase);
    if (sealed > maxFileBytes) {
      return fail(t("compose.fileTooLarge", { name: file.name, size: size(file.size), max: size(maxFileBytes) }));
    }
  } else if (plaintext.length > MAX_PLAINTEXT) {
    return fail(t("compose.textTooLarge", { length: plaintext.length, max: MAX_PLAINTEXT }));
  }
  $("create").disabled = true;
  status.textContent = passphrase ? t("compose.encryptingSlow") : t("compose.encrypting");
  try {
    const key = generateKey();
    const ttl = Number($("ttl").value);
    let answer;
    try {
      if (file !== null) {
        // The file is sealed here, whole, then sent as bytes: the name, type, note and
        // contents leave the browser only encrypted.
        const bytes = new Uint8Array(await file.arrayBuffer());
        const meta = { name: file.name, type: file.type, note: secret };
        const envelope = await sealFile(bytes, meta, key, passphrase === "" ? null : passphrase);
        status.textContent = t("compose.uploading");
        answer = await upload(new URL(`./?ttl=${ttl}&views=${views}`, base), envelope, "application/octet-stream");
      } else {
        const envelope = await seal(plaintext, key, passphrase === "" ? null : passphrase);
        status.textContent = t("compose.storing");
        answer = await upload(new URL(".", base), JSON.stringify({ message: envelope, ttl, views }), "application/json");
      }
    } catch (e) {
      if (e instanceof Error && e.message !== "network") throw e;
      return fail(t("common.unreachable"));
    }
    const body = answer.body;
    if (answer.status < 200 || answer.status >= 300) {
      const wait = answer.retryAfter;
      const why = body.error || `HTTP ${answer.status}`;
      return fail(wait ? t("compose.refusedWait", { why, wait: Number(wait) }) : t("compose.refused", { why }));
    }
    if (typeof body.id !== "string" || !/^[A-Za-z0-9]+$/.test(body.id)) {
      // Stored, perhaps, under an id that never arrived: nobody can read it, and it expires.
      return fail(t("compose.cutOff"));
    }
    const link = new URL(`s/${body.id}`, base);
    link.hash = encodeFragment(key, passphrase !== "");
    $("link").value = link.href;
    drawQr($("link-qr"), link.href, 4);
    created = { views, expiresAt: typeof body.expires_at === "string" ? body.expires_at : null };
    describeCreated();
    // The receipt token travels only in the receipt link's fragment, as the key does.
    const receipt = typeof body.receipt === "string" && /^[A-Za-z0-9]+$/.test(body.receipt) ? body.receipt : null;
    $("receipt-box").hidden = receipt === null;
    if (receipt !== null) {
      const receiptLink = new URL(`r/${body.id}`, base);
      receiptLink.hash = receipt;
      $("receipt-link").value = receiptLink.href;
      drawQr($("receipt-qr"), receiptLink.href, 3);
    }
    $("passphrase-note").hidden = passphrase === "";
    form.hidden = true;
    $("result").hidden = false;
    status.textContent = "";
    $("result-title").focus();
    $("secret").value = "";
    $("passphrase").value = "";
    viewsField.value = "1";
    fileField.value = "";
    fileChanged();
  } catch (e) {
    fail(t("compose.failed", { why: e.message }));
  } finally {
    $("create").disabled = false;
  }
}

async function copy(field, button) {
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    field.select();
    document.execCommand("copy");
  }
  const label = button.textContent;
  button.textContent = t("common.copied");
  setTimeout(() => { button.textContent = label; }, 1500);
}

/** The link just made: its views and expiry, said again when the language changes. */
let created = null;

function describeCreated() {
  if (created === null) return;
  const { views, expiresAt } = created;
  $("link-label").textContent = t("compose.share", { count: views });
  $("expiry").textContent = expiresAt === null ? "" : t("compose.expiry", { count: views, when: when(expiresAt) });
}

/** The texts this page composes, in the language in use. */
function relabel() {
  fileChanged();
  $("file-help").textContent = t("compose.fileHelp", { size: size(maxFileBytes) });
  $("views-help").textContent = t("compose.viewsHelp", { max: Number($("views").max) });
  describeCreated();
}

await start($("language"));
onChange(relabel);

form.addEventListener("submit", create);
fileField.addEventListener("change", fileChanged);
$("clear-file").addEventListener("click", () => { fileField.value = ""; fileChanged(); });
// A file dropped anywhere on the form is the file to send.
form.addEventListener("dragover", (e) => { e.preventDefault(); form.classList.add("dropping"); });
form.addEventListener("dragleave", () => form.classList.remove("dropping"));
form.addEventListener("drop", (e) => {
  e.preventDefault();
  form.classList.remove("dropping");
  if (e.dataTransfer && e.dataTransfer.files.length > 0) {
    fileField.files = e.dataTransfer.files;
    fileChanged();
  }
});
$("copy-link").addEventListener("click", () => copy($("link"), $("copy-link")));
$("copy-receipt").addEventListener("click", () => copy($("receipt-link"), $("copy-receipt")));
$("another").addEventListener("click", () => {
  $("result").hidden = true;
  form.hidden = false;
  $("secret").focus();
});
