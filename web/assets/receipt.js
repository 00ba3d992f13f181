// The sender's receipt page, /r/{id}#{receipt}. Loading it touches nothing on the server (a
// link-preview bot that fetches it learns nothing and changes nothing): the receipt is asked
// for only when the sender presses "Check", and "Delete now" destroys the secret unread. The
// receipt token is the fragment, which the browser never sends; it goes only in the
// Authorization header of those two requests.

import { t, when, start, onChange } from "./i18n.js";

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

/** The last receipt shown, said again when the language changes. */
let shown = null;

/** The receipt in plain words. */
function render(r) {
  shown = r;
  const read = r.read_at.length;
  let title;
  let detail;
  if (r.state === "deleted") {
    title = t("receipt.deleted");
    detail = read === 0 ? t("receipt.deletedUnread") : t("receipt.deletedAfter", { count: read });
  } else if (r.state === "unread") {
    title = t("receipt.unread");
    detail = t("receipt.unreadDetail", { count: r.views_left, when: when(r.expires_at) });
  } else if (r.views_left === 0) {
    title = t("receipt.read");
    detail = t("receipt.readDetail", { count: read });
  } else {
    title = t("receipt.opened");
    detail = `${t("receipt.openedTimes", { count: read })} ${t("receipt.openedMore", { count: r.views_left, when: when(r.expires_at) })}`;
  }
  $("state-title").textContent = title;
  $("state-detail").textContent = detail;
  const list = $("read-list");
  list.replaceChildren(...r.read_at.map((at, i) => {
    const item = document.createElement("li");
    item.textContent = r.read_at.length === 1 ? t("receipt.openedAt", { when: when(at) })
      : t("receipt.openedNth", { n: i + 1, when: when(at) });
    return item;
  }));
  $("delete").hidden = r.views_left === 0;
  $("delete-help").hidden = r.views_left === 0;
  $("check").hidden = true;
  $("answer").hidden = false;
  error.hidden = true;
  status.textContent = "";
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
    throw new Error(t("common.unreachable"));
  }
  const body = await resp.json().catch(() => null);
  if (resp.status === 404) {
    throw new Error(t("receipt.notFound"));
  }
  if (resp.status === 429) {
    const wait = resp.headers.get("Retry-After");
    throw new Error(wait ? t("receipt.tooManyWait", { wait: Number(wait) }) : t("receipt.tooMany"));
  }
  if (resp.ok && body && typeof body.state === "string" && Array.isArray(body.read_at)) return body;
  throw new Error(t("receipt.serviceFailed", { why: (body && body.error) || `HTTP ${resp.status}` }));
}

async function run(button, method, url, busy) {
  button.disabled = true;
  error.hidden = true;
  status.textContent = busy;
  try {
    const receipt = await ask(method, url);
    render(receipt);
    $("state-title").focus();
    if (method === "DELETE" && receipt.state === "read") {
      status.textContent = t("receipt.tooLate");
    } else if (method === "DELETE") {
      status.textContent = t("receipt.deletedStatus");
    }
  } catch (e) {
    fail(e.message);
  } finally {
    button.disabled = false;
  }
}

await start($("language"));
onChange(() => {
  if (shown) render(shown);
});
if (!usable) {
  $("check").disabled = true;
  fail(t("receipt.incomplete"));
}
$("check").addEventListener("click", () => run($("check"), "GET", receiptUrl, t("receipt.checking")));
$("check-again").addEventListener("click", () => run($("check-again"), "GET", receiptUrl, t("receipt.checking")));
$("delete").addEventListener("click", () => run($("delete"), "DELETE", messageUrl, t("receipt.deleting")));
