// Drives the page in headless Chromium (Debian's /usr/bin/chromium, through playwright-core) as
// a person would, following a plan given as JSON on stdin, and prints what it saw as JSON.
// The Rust test clients/cli/tests/interop.rs writes the plan, starts the service, and checks.
//
// plan = {
//   base: "http://127.0.0.1:PORT",          the service
//   shots: "target/screenshots/NAME",       where to save screenshots (prefix)
//   compose: [{ secret, passphrase?,         written through the form, in one browser context
//               views? }],
//   visit: [link],                           loaded in a second context, nothing pressed
//   open: [{ link, passphrases?: [..],       loaded in a second context, reveal pressed (once per
//            fault? }],                      passphrase given, in order, or once without); with
//                                            fault "cut" the read reaches the service and its
//                                            answer is cut short on the way back, with "refused"
//                                            it never leaves the browser
//   composeFaults: ["cut" | "refused"],      a create through the form with that fault
//   keyboard: { secret },                    composed and revealed with the keyboard alone
//   languages: { codes: [..], reveal, receipt }, each page opened in each language on a 360 px
//                                            wide phone (the browser's language set to it),
//                                            checked against web/assets/locale-<code>.js
//   fileCompose: [{ path, note?, passphrase?, views? }],  files chosen and sent through the form
//   fileTooLarge: path,                      a file over the limit: refused before any upload
//   fileOpen: [{ link, passphrase?, saveTo }], revealed in the recipient's context and saved
//                                            with the Save button to the path saveTo
//   receipts: [{ link, press: [..] }],       the sender's receipt page ("composed:N": the receipt
//                                            link the form gave for compose[N]), loaded (its requests
//                                            recorded), then each button pressed in order:
//                                            "check", "again" (check again) or "delete"
// }
// result = { composed: [link], receiptLinks: [link], composedSaid: [{ label, expiry }],
//            fileComposed: [link], fileTooLarge: { error, posts },
//            fileOpened: [{ name, size, note, error, saved, viewsLeft, burned }],
//            opened: [{ link, text, error, plainWarning, burned, viewsLeft }],
//            composeFaults: [{ fault, error, link }],
//            receipts: [{ link, loadRequests: [path], loadError, checkDisabled,
//                         seen: [{ title, detail, reads, deletable, status, error }] }] }
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

// axe-core (npm, pinned in package.json), run inside the page on every state, light and dark.
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const plan = JSON.parse(await new Promise((resolve) => {
  let data = "";
  process.stdin.on("data", (c) => { data += c; });
  process.stdin.on("end", () => resolve(data));
}));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const result = { composed: [], receiptLinks: [], composedSaid: [], opened: [], composeFaults: [], receipts: [], console: [],
  fileComposed: [], fileTooLarge: null, fileOpened: [], axe: [] };

// Runs axe-core on `page` as it is now, in the light and the dark colour scheme, and records
// the violations under `state`. Evaluated through the DevTools protocol, which the page's CSP
// does not govern.
async function audit(page, state) {
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.evaluate(axeSource);
    const violations = await page.evaluate(async () => {
      const found = await window.axe.run(document, { resultTypes: ["violations"] });
      return found.violations.map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")) }));
    });
    result.axe.push({ state: `${state} (${scheme})`, violations });
  }
  await page.emulateMedia({ colorScheme: "light" });
}

// Breaks the API request whose path is `path` in `page`, as `fault` says.
async function inject(page, path, method, fault) {
  await page.route((url) => url.pathname === path, async (route) => {
    if (route.request().method() !== method) return route.continue();
    if (fault === "refused") return route.abort("connectionrefused");
    const response = await route.fetch();
    const body = await response.text();
    return route.fulfill({ response, body: body.slice(0, Math.floor(body.length / 2)) });
  });
}

// Records the page's errors. A page whose request is broken on purpose logs the failed load
// itself (`allowFailedLoads`); an uncaught exception is recorded everywhere.
function watch(page, allowFailedLoads = false) {
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    if (allowFailedLoads && m.text().startsWith("Failed to load resource")) return;
    result.console.push(m.text());
  });
  page.on("pageerror", (e) => result.console.push(String(e)));
}

try {
  // The sender writes secrets through the form.
  const sender = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  const page = await sender.newPage();
  watch(page);
  // Every request the compose page makes: drawing the QR codes must add none.
  result.composeRequests = [];
  page.on("request", (r) => result.composeRequests.push(`${r.method()} ${new URL(r.url()).pathname}`));
  for (const [i, item] of plan.compose.entries()) {
    await page.goto(plan.base + "/", { waitUntil: "load" });
    await page.getByLabel("Secret", { exact: true }).fill(item.secret);
    if (item.passphrase) await page.getByLabel("Passphrase (optional)").fill(item.passphrase);
    if (item.views) await page.getByLabel("Times it can be opened").fill(String(item.views));
    if (i === 0) {
      await page.screenshot({ path: `${plan.shots}-compose-form.png`, fullPage: true });
      await audit(page, "compose, filled in");
    }
    await page.getByRole("button", { name: "Encrypt and create link" }).click();
    await page.locator("#result").waitFor({ state: "visible", timeout: 20000 });
    result.composed.push(await page.locator("#link").inputValue());
    result.receiptLinks.push((await page.locator("#receipt-box").isVisible()) ? await page.locator("#receipt-link").inputValue() : null);
    result.composedSaid.push({
      label: await page.locator("#link-label").textContent(),
      expiry: await page.locator("#expiry").textContent(),
    });
    if (i === 0) {
      await page.screenshot({ path: `${plan.shots}-compose-link.png`, fullPage: true });
      await audit(page, "created: the links and their QR codes");
      // The QR codes, as a camera would see them: for a real decoder (zbarimg) to read.
      result.qrShots = { link: `${plan.shots}-qr-link.png`, receipt: `${plan.shots}-qr-receipt.png` };
      await page.locator("#link-qr").screenshot({ path: result.qrShots.link });
      await page.locator("#receipt-qr").screenshot({ path: result.qrShots.receipt });
    }
  }

  // Files, chosen and sent through the form.
  for (const [i, item] of (plan.fileCompose || []).entries()) {
    await page.goto(plan.base + "/", { waitUntil: "load" });
    await page.setInputFiles("#file", item.path);
    if (item.note) await page.getByLabel("Note (optional)", { exact: true }).fill(item.note);
    if (item.passphrase) await page.getByLabel("Passphrase (optional)").fill(item.passphrase);
    if (item.views) await page.getByLabel("Times it can be opened").fill(String(item.views));
    if (i === 0) {
      await page.screenshot({ path: `${plan.shots}-file-compose-form.png`, fullPage: true });
      await audit(page, "compose, a file chosen");
    }
    await page.getByRole("button", { name: "Encrypt and create link" }).click();
    await page.locator("#result").waitFor({ state: "visible", timeout: 30000 });
    result.fileComposed.push(await page.locator("#link").inputValue());
    if (i === 0) await page.screenshot({ path: `${plan.shots}-file-compose-link.png`, fullPage: true });
  }
  if (plan.fileTooLarge) {
    const p = await sender.newPage();
    watch(p);
    let posts = 0;
    p.on("request", (r) => { if (r.method() === "POST") posts += 1; });
    await p.goto(plan.base + "/", { waitUntil: "load" });
    await p.setInputFiles("#file", plan.fileTooLarge);
    await p.getByRole("button", { name: "Encrypt and create link" }).click();
    await p.locator("#error").waitFor({ state: "visible", timeout: 20000 });
    await p.screenshot({ path: `${plan.shots}-file-too-large.png`, fullPage: true });
    await audit(p, "compose, a file too large");
    result.fileTooLarge = { error: await p.locator("#error").textContent(), posts };
    await p.close();
  }

  // The whole flow with the keyboard alone: Tab to each control, type, Enter; focus must land
  // on what changed.
  if (plan.keyboard) {
    const kb = await browser.newContext({ viewport: { width: 1000, height: 900 } });
    const p = await kb.newPage();
    watch(p);
    const tabTo = async (id) => {
      for (let n = 0; n < 40; n += 1) {
        await p.keyboard.press("Tab");
        if (await p.evaluate((want) => document.activeElement !== null && document.activeElement.id === want, id)) return true;
      }
      return false;
    };
    const focused = () => p.evaluate(() => (document.activeElement ? document.activeElement.id : null));
    const seen = {};
    await p.goto(plan.base + "/", { waitUntil: "load" });
    seen.reachedSecret = await tabTo("secret");
    await p.keyboard.type(plan.keyboard.secret);
    seen.reachedCreate = await tabTo("create");
    await p.keyboard.press("Enter");
    await p.locator("#result").waitFor({ state: "visible", timeout: 20000 });
    seen.focusAfterCreate = await focused();
    seen.reachedCopy = await tabTo("copy-link");
    const link = await p.locator("#link").inputValue();
    await p.goto(link, { waitUntil: "networkidle" });
    seen.reachedReveal = await tabTo("reveal");
    await p.keyboard.press("Enter");
    await p.locator("#revealed").waitFor({ state: "visible", timeout: 20000 });
    seen.focusAfterReveal = await focused();
    seen.text = await p.locator("#secret").inputValue();
    seen.reachedCopySecret = await tabTo("copy-secret");
    result.keyboard = seen;
    await kb.close();
  }

  // Every page in every language, on a phone 360 px wide: the language the browser asks for is
  // the page's, every translated element says its catalogue's sentence, nothing scrolls sideways,
  // and Arabic is laid out right to left.
  if (plan.languages) {
    result.languages = [];
    const english = (await import(pathToFileURL(`${process.cwd()}/web/assets/locale-en.js`).href)).default;
    for (const code of plan.languages.codes) {
      const catalogue = (await import(pathToFileURL(`${process.cwd()}/web/assets/locale-${code}.js`).href)).default;
      const ctx = await browser.newContext({ viewport: { width: 360, height: 780 }, isMobile: true, locale: code });
      const p = await ctx.newPage();
      watch(p);
      for (const [name, path] of [["compose", "/"], ["reveal", plan.languages.reveal], ["receipt", plan.languages.receipt]]) {
        await p.goto(plan.base + path, { waitUntil: "networkidle" });
        await p.waitForFunction((want) => document.documentElement.lang === want, code, { timeout: 10000 });
        const seen = await p.evaluate(() => ({
          lang: document.documentElement.lang,
          dir: document.documentElement.dir,
          scrollWidth: document.documentElement.scrollWidth,
          width: window.innerWidth,
          texts: [...document.querySelectorAll("[data-i18n]")].map((el) => [el.dataset.i18n, el.textContent]),
          heading: document.querySelector("h1").textContent,
        }));
        const mismatches = seen.texts.filter(([key, text]) => typeof catalogue[key] === "string" && catalogue[key] !== text)
          .map(([key]) => key);
        const leftInEnglish = seen.texts.filter(([key, text]) => code !== "en" && text === english[key]).map(([key]) => key);
        result.languages.push({ code, page: name, lang: seen.lang, dir: seen.dir, scrollWidth: seen.scrollWidth,
          width: seen.width, mismatches, english: leftInEnglish, heading: seen.heading });
        if (["de", "ar"].includes(code) && name !== "receipt") {
          await p.screenshot({ path: `${plan.shots}-${name}-${code}-phone.png`, fullPage: true });
        }
        if (code === "ar") await audit(p, `${name}, Arabic, right to left`);
        if (code === "de" && name === "compose") {
          await p.emulateMedia({ colorScheme: "dark" });
          await p.screenshot({ path: `${plan.shots}-compose-de-dark.png`, fullPage: true });
          await p.emulateMedia({ colorScheme: "light" });
        }
      }
      await ctx.close();
    }
    // The reader's own choice on the page wins over the browser's, and is remembered.
    const ctx = await browser.newContext({ viewport: { width: 1000, height: 900 }, locale: "en-US" });
    const p = await ctx.newPage();
    watch(p);
    await p.goto(plan.base + "/", { waitUntil: "networkidle" });
    await p.selectOption("#language", "fr");
    await p.waitForFunction(() => document.documentElement.lang === "fr", null, { timeout: 10000 });
    await p.reload({ waitUntil: "networkidle" });
    await p.waitForFunction(() => document.documentElement.lang !== "", null, { timeout: 10000 });
    result.remembered = await p.evaluate(() => [document.documentElement.lang, document.getElementById("language").value]);
    await ctx.close();
  }

  // Creates whose answer never arrives whole: no link may be shown.
  for (const fault of plan.composeFaults || []) {
    const p = await sender.newPage();
    watch(p, true);
    await inject(p, new URL(plan.base + "/").pathname, "POST", fault);
    await p.goto(plan.base + "/", { waitUntil: "load" });
    await p.getByLabel("Secret", { exact: true }).fill(`a create whose answer is ${fault}`);
    await p.getByRole("button", { name: "Encrypt and create link" }).click();
    await p.locator("#error").waitFor({ state: "visible", timeout: 20000 });
    await p.screenshot({ path: `${plan.shots}-compose-${fault}.png`, fullPage: true });
    await audit(p, `compose, the create ${fault}`);
    result.composeFaults.push({
      fault,
      error: await p.locator("#error").textContent(),
      link: (await p.locator("#result").isVisible()) ? await p.locator("#link").inputValue() : null,
    });
    await p.close();
  }

  // The recipient, in a browser context of their own (no shared storage).
  const recipient = await browser.newContext({ viewport: { width: 420, height: 860 }, isMobile: true });
  for (const link of plan.visit) {
    const p = await recipient.newPage();
    watch(p);
    await p.goto(link, { waitUntil: "networkidle" });
    await p.close();
  }
  for (const [i, item] of plan.open.entries()) {
    const p = await recipient.newPage();
    watch(p, Boolean(item.fault));
    if (item.fault) {
      const url = new URL(item.link);
      await inject(p, url.pathname.replace("/s/", "/"), "GET", item.fault);
    }
    await p.goto(item.link, { waitUntil: "networkidle" });
    if (i === 0) {
      await p.screenshot({ path: `${plan.shots}-reveal-before.png`, fullPage: true });
      await audit(p, "reveal, before");
    }
    const tries = item.passphrases && item.passphrases.length ? item.passphrases : [null];
    let seen = { link: item.link, text: null, error: null, plainWarning: false, revealButtonDisabled: false };
    for (const passphrase of tries) {
      if (passphrase !== null) await p.getByLabel("Passphrase", { exact: true }).fill(passphrase);
      const button = p.locator("#reveal");
      if (await button.isDisabled()) {
        seen.revealButtonDisabled = true;
      } else {
        await button.click();
        await p.waitForFunction(
          () => !document.getElementById("revealed").hidden || !document.getElementById("error").hidden,
          null, { timeout: 30000 });
      }
      const revealed = await p.locator("#revealed").isVisible();
      seen.text = revealed ? await p.locator("#secret").inputValue() : null;
      seen.error = (await p.locator("#error").isVisible()) ? await p.locator("#error").textContent() : null;
      seen.plainWarning = await p.locator("#plain-warning").isVisible();
      seen.burned = await p.locator("#burned").isVisible();
      seen.viewsLeft = (await p.locator("#views-left").isVisible()) ? await p.locator("#views-left").textContent() : null;
      // Each error a reveal can end in, once (a wrong passphrase, each bad link, each fault).
      if (seen.error !== null) await audit(p, `reveal, an error: ${seen.error.slice(0, 60)}`);
      if (revealed) break;
    }
    if (i === 0) {
      await p.screenshot({ path: `${plan.shots}-reveal-after.png`, fullPage: true });
      await audit(p, "reveal, after");
    }
    if (item.fault) await p.screenshot({ path: `${plan.shots}-reveal-${item.fault}.png`, fullPage: true });
    result.opened.push(seen);
    await p.close();
  }

  // Files revealed and saved by the recipient.
  const fileRecipient = await browser.newContext({ viewport: { width: 420, height: 860 }, isMobile: true, acceptDownloads: true });
  for (const [i, item] of (plan.fileOpen || []).entries()) {
    const p = await fileRecipient.newPage();
    watch(p);
    await p.goto(item.link, { waitUntil: "networkidle" });
    if (item.passphrase) await p.getByLabel("Passphrase", { exact: true }).fill(item.passphrase);
    await p.locator("#reveal").click();
    await p.waitForFunction(
      () => !document.getElementById("revealed-file").hidden || !document.getElementById("error").hidden,
      null, { timeout: 30000 });
    const seen = { name: null, size: null, note: null, error: null, saved: false, viewsLeft: null, burned: false };
    if (await p.locator("#revealed-file").isVisible()) {
      seen.name = await p.locator("#file-name").textContent();
      seen.size = await p.locator("#file-size").textContent();
      seen.note = (await p.locator("#file-note-box").isVisible()) ? await p.locator("#file-note").textContent() : null;
      seen.burned = await p.locator("#file-burned").isVisible();
      seen.viewsLeft = (await p.locator("#file-views-left").isVisible()) ? await p.locator("#file-views-left").textContent() : null;
      if (i === 0) {
        await p.screenshot({ path: `${plan.shots}-file-reveal.png`, fullPage: true });
        await audit(p, "reveal, a file");
      }
      const [download] = await Promise.all([p.waitForEvent("download"), p.locator("#save-file").click()]);
      seen.suggested = download.suggestedFilename();
      await download.saveAs(item.saveTo);
      seen.saved = true;
    } else {
      seen.error = await p.locator("#error").textContent();
    }
    result.fileOpened.push(seen);
    await p.close();
  }

  // The sender's receipt pages, in a context of their own.
  const owner = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  for (const [i, item] of (plan.receipts || []).entries()) {
    const p = await owner.newPage();
    watch(p, true); // a wrong receipt's 404 is logged by the browser as a failed load
    const requests = [];
    p.on("request", (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
    const link = item.link.startsWith("composed:") ? result.receiptLinks[Number(item.link.slice(9))] : item.link;
    await p.goto(link, { waitUntil: "networkidle" });
    if (i === 0) {
      await p.screenshot({ path: `${plan.shots}-receipt-loaded.png`, fullPage: true });
      await audit(p, "receipt, loaded");
    }
    const loadRequests = requests.filter((r) => !r.includes("/assets/") && !r.startsWith("GET /r/"));
    const loadError = (await p.locator("#error").isVisible()) ? await p.locator("#error").textContent() : null;
    if (loadError !== null) await audit(p, "receipt, an incomplete link");
    const checkDisabled = await p.locator("#check").isDisabled();
    const seen = [];
    for (const [n, press] of item.press.entries()) {
      const button = p.locator({ check: "#check", again: "#check-again", delete: "#delete" }[press]);
      // The click's handler says "Checking…" or "Deleting…" before its first await; the
      // answer (or an error) replaces it.
      await button.click();
      await p.waitForFunction(
        () => !document.getElementById("error").hidden
          || (!document.getElementById("answer").hidden && !/…$/.test(document.getElementById("status").textContent)),
        null, { timeout: 20000 });
      seen.push({
        title: (await p.locator("#answer").isVisible()) ? await p.locator("#state-title").textContent() : null,
        detail: (await p.locator("#answer").isVisible()) ? await p.locator("#state-detail").textContent() : null,
        reads: await p.locator("#read-list li").count(),
        deletable: await p.locator("#delete").isVisible(),
        status: await p.locator("#status").textContent(),
        error: (await p.locator("#error").isVisible()) ? await p.locator("#error").textContent() : null,
      });
      if (i === 0) await p.screenshot({ path: `${plan.shots}-receipt-${n}-${press}.png`, fullPage: true });
      await audit(p, `receipt ${i}, after ${press}`);
    }
    result.receipts.push({ link, loadRequests, loadError, checkDisabled, seen });
    await p.close();
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + "\n");
