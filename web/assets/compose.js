// The compose page: encrypt in the browser, store the envelope, show the link with its key.
import { generateKey, seal, sealFile, sealedFileLength, encodeFragment, MAX_PLAINTEXT } from "./envelope.js";
import { drawQr } from "./qr.js";

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

/** "3.2 MB", "640 KB", "12 bytes". */
function size(bytes) {
  if (bytes >= 1048576) return `${(bytes / 1048576).toFixed(1).replace(/\.0$/, "")} MB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
  return bytes === 1 ? "1 byte" : `${bytes} bytes`;
}

/** The file chosen, or null. */
function chosenFile() {
  return fileField.files && fileField.files.length > 0 ? fileField.files[0] : null;
}

/** With a file, the text becomes its note; without, the secret. */
function fileChanged() {
  const file = chosenFile();
  $("secret-label").textContent = file ? "Note (optional)" : "Secret";
  $("secret-help").textContent = file ? "Sent with the file, encrypted with it." : "Up to 76,750 bytes of text.";
  $("file-chosen").hidden = file === null;
  $("clear-file").hidden = file === null;
  error.hidden = true;
  if (file === null) return;
  $("file-chosen").textContent = `File: ${file.name} (${size(file.size)})`;
  const sealed = sealedFileLength(file.size, { name: file.name, type: file.type, note: "" }, false);
  if (sealed > maxFileBytes) {
    fail(`${file.name} is ${size(file.size)}; at most ${size(maxFileBytes)} fit once encrypted. Nothing was sent.`);
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
      status.textContent = `Uploading… ${percent}%`;
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
  if (secret.trim() === "" && file === null) return fail("Write the secret first, or choose a file.");
  if (!Number.isInteger(views) || views < 1 || views > maxViews) {
    viewsField.focus();
    return fail(`The times it can be opened must be a whole number from 1 to ${maxViews}.`);
  }
  if (file !== null) {
    const meta = { name: file.name, type: file.type, note: secret };
    const sealed = sealedFileLength(file.size, meta, passphrase === "" ? null : passphrase);
    if (sealed > maxFileBytes) {
      return fail(`${file.name} is ${size(file.size)}; at most ${size(maxFileBytes)} fit once encrypted. Nothing was sent.`);
    }
  } else if (plaintext.length > MAX_PLAINTEXT) {
    return fail(`The secret is ${plaintext.length} bytes; at most ${MAX_PLAINTEXT} fit once encrypted.`);
  }
  $("create").disabled = true;
  status.textContent = passphrase ? "Encrypting (the passphrase takes a moment)…" : "Encrypting…";
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
        status.textContent = "Uploading…";
        answer = await upload(new URL(`./?ttl=${ttl}&views=${views}`, base), envelope, "application/octet-stream");
      } else {
        const envelope = await seal(plaintext, key, passphrase === "" ? null : passphrase);
        status.textContent = "Storing…";
        answer = await upload(new URL(".", base), JSON.stringify({ message: envelope, ttl, views }), "application/json");
      }
    } catch (e) {
      if (e instanceof Error && e.message !== "network") throw e;
      return fail("Could not reach the service (the network, or the service, is down). Try again.");
    }
    const body = answer.body;
    if (answer.status < 200 || answer.status >= 300) {
      const wait = answer.retryAfter;
      const why = body.error || `HTTP ${answer.status}`;
      return fail(`The service refused: ${why}${wait ? ` (try again in ${wait} s)` : ""}.`);
    }
    if (typeof body.id !== "string" || !/^[A-Za-z0-9]+$/.test(body.id)) {
      // Stored, perhaps, under an id that never arrived: nobody can read it, and it expires.
      return fail("The service's answer was cut off on its way here, so no link was made. Try again.");
    }
    const link = new URL(`s/${body.id}`, base);
    link.hash = encodeFragment(key, passphrase !== "");
    $("link").value = link.href;
    drawQr($("link-qr"), link.href, 4);
    $("link-label").textContent = views === 1
      ? "Share this link. It works once."
      : `Share this link. It works ${views} times.`;
    const until = body.expires_at ? new Date(body.expires_at).toLocaleString() : null;
    $("expiry").textContent = until === null ? ""
      : views === 1 ? `Unless it is read first, it is destroyed at ${until}.`
      : `Unless it is opened ${views} times first, it is destroyed at ${until}.`;
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
    fail(`Could not create the link: ${e.message}`);
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
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
}

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
