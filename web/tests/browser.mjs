// Drives the page in headless Chromium (Debian's /usr/bin/chromium, through playwright-core) as
// a person would, following a plan given as JSON on stdin, and prints what it saw as JSON.
// The Rust test clients/cli/tests/interop.rs writes the plan, starts the service, and checks.
//
// plan = {
//   base: "http://127.0.0.1:PORT",          the service
//   shots: "target/screenshots/NAME",       where to save screenshots (prefix)
//   compose: [{ secret, passphrase? }],      written through the form, in one browser context
//   visit: [link],                           loaded in a second context, nothing pressed
//   open: [{ link, passphrases?: [..],       loaded in a second context, reveal pressed (once per
//            fault? }],                      passphrase given, in order, or once without); with
//                                            fault "cut" the read reaches the service and its
//                                            answer is cut short on the way back, with "refused"
//                                            it never leaves the browser
//   composeFaults: ["cut" | "refused"],      a create through the form with that fault
// }
// result = { composed: [link], opened: [{ link, text, error, plainWarning }],
//            composeFaults: [{ fault, error, link }] }
import { chromium } from "playwright-core";

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
const result = { composed: [], opened: [], composeFaults: [], console: [] };

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
  for (const [i, item] of plan.compose.entries()) {
    await page.goto(plan.base + "/", { waitUntil: "load" });
    await page.getByLabel("Secret", { exact: true }).fill(item.secret);
    if (item.passphrase) await page.getByLabel("Passphrase (optional)").fill(item.passphrase);
    if (i === 0) await page.screenshot({ path: `${plan.shots}-compose-form.png`, fullPage: true });
    await page.getByRole("button", { name: "Encrypt and create link" }).click();
    await page.locator("#result").waitFor({ state: "visible", timeout: 20000 });
    result.composed.push(await page.locator("#link").inputValue());
    if (i === 0) await page.screenshot({ path: `${plan.shots}-compose-link.png`, fullPage: true });
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
    if (i === 0) await p.screenshot({ path: `${plan.shots}-reveal-before.png`, fullPage: true });
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
      if (revealed) break;
    }
    if (i === 0) await p.screenshot({ path: `${plan.shots}-reveal-after.png`, fullPage: true });
    if (item.fault) await p.screenshot({ path: `${plan.shots}-reveal-${item.fault}.png`, fullPage: true });
    result.opened.push(seen);
    await p.close();
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + "\n");
