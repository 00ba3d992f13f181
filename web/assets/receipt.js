// The sender's receipt page, /r/{id}#{receipt}. Loading it touches nothing on the server (a
// link-preview bot that fetches it learns nothing and changes nothing): the receipt is asked
// for only when the sender presses "Check", and "Delete now" destroys the secret unread. The
// receipt token is the fragment, which the browser never sends; it goes only in the
// Authorization header of those two requests.

const $ = (id) => document.getElementById(id);
const status = $("status");
const error = $("error");

// The link is {base}/r/{id}#{receipt}: the API is at {base}/{id} and {base}/{id}/receipt.
const match = /^(.*)\/r\/([A-Za-z0-9]+)\/?$/.exec(location.pathname);
const token = location.hash.replace(/^#/, "");
const usable = match !== null && /^[A-Za-z0-9]+$/.test(token);
const messageUrl = match ? new URL(`${match[1]}/${match[2]}`, location.origin) : null;
const receiptUrl = match ? new URL(`${match[1]}/${match[2]}/receipt`, location.origin) : null;

function fail(message) {
  error.textContent = message;
  error.hidden = false;
  status.textContent = "";
}

const when = (iso) => new Date(iso).toLocaleString();
const times = (n) => (n === 1 ? "once" : n === 2 ? "twice" : `${n} times`);

/** The receipt in plain words. */
function render(r) {
  const read = r.read_at.length;
  let title;
  let detail;
  if (r.state === "deleted") {
    title = "Deleted";
    detail = read === 0
      ? "It was deleted before anyone opened it. Nobody can read it now."
      : `It was opened ${times(read)}, then deleted. Nobody can read it now.`;
  } else if (r.state === "unread") {
    title = "Not opened yet";
    detail = `The link can open it ${times(r.views_left)}. Unless that happens first, it is destroyed at ${when(r.expires_at)}.`;
  } else if (r.views_left === 0) {
    title = "Read";
    detail = read === 1
      ? "It was opened, and is now destroyed on the server."
      : `It was opened ${times(read)}, and is now destroyed on the server.`;
  } else {
    title = "Opened";
    detail = `It was opened ${times(read)}. The link can open it ${times(r.views_left)} more, until ${when(r.expires_at)}.`;
  }
  $("state-title").textContent = title;
  $("state-detail").textContent = detail;
  const list = $("read-list");
  list.replaceChildren(...r.read_at.map((at, i) => {
    const item = document.createElement("li");
    item.textContent = r.read_at.length === 1 ? `Opened ${when(at)}` : `Opened (${i + 1}) ${when(at)}`;
    return item;
  }));
  $("delete").hidden = r.views_left === 0;
  $("delete-help").hidden = r.views_left === 0;
  $("check").hidden = true;
  $("answer").hidden = false;
  error.hidden = true;
  status.textContent = "";
  $("state-title").focus();
}

/** Sends the sender's request; the receipt it answers, or throws with a sentence. */
async function ask(method, url) {
  let resp;
  try {
    resp = await fetch(url, {
      method,
      headers: { Accept: "application/json", Authorization: `Bearer ${token}` },
      cache: "no-store",
    });
  } catch {
    throw new Error("Could not reach the service (the network, or the service, is down). Try again.");
  }
  const body = await resp.json().catch(() => null);
  if (resp.status === 404) {
    throw new Error("No such receipt: it expired with its secret (a receipt lasts as long as the secret could), or the link is incomplete.");
  }
  if (resp.status === 429) {
    const wait = resp.headers.get("Retry-After");
    throw new Error(`Too many requests from here${wait ? `; try again in ${wait} s` : ""}.`);
  }
  if (resp.ok && body && typeof body.state === "string" && Array.isArray(body.read_at)) return body;
  throw new Error(`The service could not answer (${(body && body.error) || `HTTP ${resp.status}`}). Try again later.`);
}

async function run(button, method, url, busy) {
  button.disabled = true;
  error.hidden = true;
  status.textContent = busy;
  try {
    const receipt = await ask(method, url);
    render(receipt);
    if (method === "DELETE" && receipt.state === "read") {
      status.textContent = "Too late to delete: every time the link could open it was used first.";
    } else if (method === "DELETE") {
      status.textContent = "Deleted.";
    }
  } catch (e) {
    fail(e.message);
  } finally {
    button.disabled = false;
  }
}

if (!usable) {
  $("check").disabled = true;
  fail("This receipt link is incomplete: use the whole link you were given, with the part after #.");
}
$("check").addEventListener("click", () => run($("check"), "GET", receiptUrl, "Checking…"));
$("check-again").addEventListener("click", () => run($("check-again"), "GET", receiptUrl, "Checking…"));
$("delete").addEventListener("click", () => run($("delete"), "DELETE", messageUrl, "Deleting…"));
