// The compose page: encrypt in the browser, store the envelope, show the link with its key.
import { generateKey, seal, encodeFragment, MAX_PLAINTEXT } from "./envelope.js";

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

async function create(event) {
  event.preventDefault();
  error.hidden = true;
  const secret = $("secret").value;
  const passphrase = $("passphrase").value;
  const plaintext = new TextEncoder().encode(secret);
  const viewsField = $("views");
  const views = Number(viewsField.value);
  const maxViews = Number(viewsField.max);
  if (secret.trim() === "") return fail("Write the secret first.");
  if (!Number.isInteger(views) || views < 1 || views > maxViews) {
    viewsField.focus();
    return fail(`The times it can be opened must be a whole number from 1 to ${maxViews}.`);
  }
  if (plaintext.length > MAX_PLAINTEXT) {
    return fail(`The secret is ${plaintext.length} bytes; at most ${MAX_PLAINTEXT} fit once encrypted.`);
  }
  $("create").disabled = true;
  status.textContent = passphrase ? "Encrypting (the passphrase takes a moment)…" : "Encrypting…";
  try {
    const key = generateKey();
    const envelope = await seal(plaintext, key, passphrase === "" ? null : passphrase);
    status.textContent = "Storing…";
    let resp;
    try {
      resp = await fetch(new URL(".", base), {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify({ message: envelope, ttl: Number($("ttl").value), views }),
        cache: "no-store",
      });
    } catch {
      return fail("Could not reach the service (the network, or the service, is down). Try again.");
    }
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const wait = resp.headers.get("Retry-After");
      const why = body.error || `HTTP ${resp.status}`;
      return fail(`The service refused: ${why}${wait ? ` (try again in ${wait} s)` : ""}.`);
    }
    if (typeof body.id !== "string" || !/^[A-Za-z0-9]+$/.test(body.id)) {
      // Stored, perhaps, under an id that never arrived: nobody can read it, and it expires.
      return fail("The service's answer was cut off on its way here, so no link was made. Try again.");
    }
    const link = new URL(`s/${body.id}`, base);
    link.hash = encodeFragment(key, passphrase !== "");
    $("link").value = link.href;
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
    }
    $("passphrase-note").hidden = passphrase === "";
    form.hidden = true;
    $("result").hidden = false;
    status.textContent = "";
    $("result-title").focus();
    $("secret").value = "";
    $("passphrase").value = "";
    viewsField.value = "1";
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
$("copy-link").addEventListener("click", () => copy($("link"), $("copy-link")));
$("copy-receipt").addEventListener("click", () => copy($("receipt-link"), $("copy-receipt")));
$("another").addEventListener("click", () => {
  $("result").hidden = true;
  form.hidden = false;
  $("secret").focus();
});
