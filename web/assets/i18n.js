// The page's languages: one catalogue per language, `locale-<code>.js` (English is the reference;
// served under the same name in /assets/),
// chosen from the reader's choice on the page (remembered in this browser), else the browser's
// languages (`navigator.languages`), else English. Plurals go through Intl.PluralRules, numbers,
// sizes and times through Intl. Nothing here asks the service for anything but the catalogue
// file, from the service itself.
import english from "./locale-en.js";

/** Every language the page speaks, by its code, in its own name. */
export const LANGUAGES = {
  en: "English",
  ar: "العربية",
  de: "Deutsch",
  es: "Español",
  fr: "Français",
  it: "Italiano",
  ja: "日本語",
  nl: "Nederlands",
  pl: "Polski",
  pt: "Português",
  ru: "Русский",
  sv: "Svenska",
  tr: "Türkçe",
  uk: "Українська",
  zh: "中文",
};

/** The languages written right to left. */
const RTL = new Set(["ar"]);
const STORED = "crypt-language";

let lang = "en";
let catalogue = english;
const listeners = [];

/** The language the reader asked for, or the first of the browser's that the page speaks. */
export function preferred() {
  let stored = null;
  try {
    stored = localStorage.getItem(STORED);
  } catch {
    stored = null;
  }
  if (stored && stored in LANGUAGES) return stored;
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (base in LANGUAGES) return base;
  }
  return "en";
}

/** The language in use. */
export function language() {
  return lang;
}

function format(value) {
  return typeof value === "number" ? new Intl.NumberFormat(lang).format(value) : String(value);
}

/** The sentence `key` in the language in use, with `vars` put in (numbers formatted). */
export function t(key, vars = {}) {
  let entry = catalogue[key] ?? english[key] ?? key;
  if (typeof entry === "object") {
    const category = new Intl.PluralRules(lang).select(Number(vars.count ?? 0));
    entry = entry[category] ?? entry.other;
  }
  return entry.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? format(vars[name]) : whole));
}

/** A size as people read it: "3.2 MB", "640 kB", "12 byte", in the language in use. */
export function size(bytes) {
  const [value, unit] = bytes >= 1048576 ? [bytes / 1048576, "megabyte"]
    : bytes >= 1024 ? [bytes / 1024, "kilobyte"] : [bytes, "byte"];
  return new Intl.NumberFormat(lang, { style: "unit", unit, unitDisplay: "short", maximumFractionDigits: unit === "byte" ? 0 : 1 })
    .format(unit === "kilobyte" ? Math.round(value) : value);
}

/** An instant (RFC 3339) as a date and time in the language in use. */
export function when(iso) {
  return new Date(iso).toLocaleString(lang, { dateStyle: "medium", timeStyle: "short" });
}

/** A duration in seconds in words ("1 day", "5 Minuten"). */
export function duration(secs) {
  const [n, unit] = secs % 86400 === 0 ? [secs / 86400, "day"] : secs % 3600 === 0 ? [secs / 3600, "hour"]
    : secs % 60 === 0 ? [secs / 60, "minute"] : [secs, "second"];
  return new Intl.NumberFormat(lang, { style: "unit", unit, unitDisplay: "long" }).format(n);
}

/**
 * Puts the language's words into `root`: `data-i18n="key"` sets an element's text,
 * `data-i18n-attr="attribute:key;..."` its attributes, `data-i18n-title` on <html> the title;
 * the expiry choice's options (`#ttl option`) are named in words.
 */
export function apply(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attribute, key] = pair.split(":");
      el.setAttribute(attribute, t(key));
    }
  }
  for (const option of root.querySelectorAll("#ttl option")) option.textContent = duration(Number(option.value));
  const title = document.documentElement.dataset.i18nTitle;
  if (title) document.title = t(title);
}

/** Calls `fn` now and each time the language changes (for texts a page composes itself). */
export function onChange(fn) {
  listeners.push(fn);
  fn();
}

/** Switches to `code`: loads its catalogue, lays the page out in its direction, renames. */
export async function use(code) {
  const next = code in LANGUAGES ? code : "en";
  catalogue = next === "en" ? english : (await import(`./locale-${next}.js`)).default;
  lang = next;
  document.documentElement.lang = next;
  document.documentElement.dir = RTL.has(next) ? "rtl" : "ltr";
  apply();
  for (const fn of listeners) fn();
}

/** Fills the language choice `select`, and remembers and uses what the reader picks. */
export function chooser(select) {
  select.replaceChildren(...Object.entries(LANGUAGES).map(([code, name]) => {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = name;
    option.lang = code;
    return option;
  }));
  select.value = lang;
  select.addEventListener("change", async () => {
    try {
      localStorage.setItem(STORED, select.value);
    } catch {
      // A browser that keeps nothing still switches, for this page.
    }
    await use(select.value);
  });
}

/** Starts the page in the reader's language, with the choice in `select`. */
export async function start(select) {
  await use(preferred());
  if (select) chooser(select);
}

/** The sentence for an envelope error, in the language in use. */
export function envelopeMessage(e) {
  return e && e.code && `envelope.${e.code}` in english ? t(`envelope.${e.code}`, e.vars || {}) : String(e && e.message);
}
