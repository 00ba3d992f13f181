// The page's catalogues (web/assets/locale-*.js) against English: every key in every language,
// no sentence left in English, the same placeholders, and exactly the plural forms the
// language uses (Intl.PluralRules). And the translation function's plurals and numbers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";

globalThis.navigator ??= { languages: ["en"] };
const i18n = await import("../assets/i18n.js");
const load = async (code) => (await import(`../assets/locale-${code}.js`)).default;
const english = await load("en");
const placeholders = (s) => [...String(s).matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(",");
const others = Object.keys(i18n.LANGUAGES).filter((code) => code !== "en");

test("at least twelve languages besides English, one of them right to left, each with its file", () => {
  assert.ok(others.length >= 12, `${others.length}`);
  assert.ok(others.includes("ar"));
  const files = readdirSync(new URL("../assets/", import.meta.url)).filter((f) => /^locale-\w+\.js$/.test(f));
  assert.deepEqual(files.map((f) => f.slice(7, -3)).sort(), Object.keys(i18n.LANGUAGES).sort());
});

for (const code of others) {
  test(`${code}: every key, nothing left in English, the same placeholders, its plural forms`, async () => {
    const catalogue = await load(code);
    assert.deepEqual(Object.keys(catalogue).sort(), Object.keys(english).sort(), "the keys");
    const categories = new Intl.PluralRules(code).resolvedOptions().pluralCategories.slice().sort();
    for (const [key, source] of Object.entries(english)) {
      const translated = catalogue[key];
      if (typeof source === "object") {
        assert.equal(typeof translated, "object", `${key} is a plural`);
        assert.deepEqual(Object.keys(translated).sort(), categories, `${key}: the plural forms of ${code}`);
        for (const [form, text] of Object.entries(translated)) {
          assert.ok(text.trim() !== "", `${key}.${form} is empty`);
          assert.notEqual(text, source[form] ?? source.other, `${key}.${form} is left in English`);
          // A form may leave the number out where the word says it ("once"); no other placeholder.
          const want = placeholders(source.other).split(",").filter((p) => p && p !== "count");
          const got = placeholders(text).split(",").filter((p) => p && p !== "count");
          assert.deepEqual(got, want, `${key}.${form}: placeholders`);
        }
      } else {
        assert.equal(typeof translated, "string", key);
        assert.ok(translated.trim() !== "", `${key} is empty`);
        assert.notEqual(translated, source, `${key} is left in English`);
        assert.equal(placeholders(translated), placeholders(source), `${key}: placeholders`);
      }
    }
  });
}

test("plurals follow the language's rules, and numbers are the language's", async () => {
  globalThis.document = { documentElement: { dataset: {} }, querySelectorAll: () => [] };
  await i18n.use("en");
  assert.equal(i18n.t("compose.share", { count: 1 }), "Share this link. It works once.");
  assert.equal(i18n.t("compose.share", { count: 3 }), "Share this link. It works 3 times.");
  assert.equal(i18n.t("compose.secretHelp", { max: 76750 }), "Up to 76,750 bytes of text.");
  await i18n.use("ru");
  const ru = await load("ru");
  assert.equal(i18n.t("reveal.viewsLeft", { count: 3 }), ru["reveal.viewsLeft"].few.replace("{count}", "3"));
  assert.equal(i18n.t("reveal.viewsLeft", { count: 5 }), ru["reveal.viewsLeft"].many.replace("{count}", "5"));
  await i18n.use("ar");
  assert.equal(document.documentElement.dir, "rtl");
  await i18n.use("de");
  assert.equal(document.documentElement.dir, "ltr");
  assert.ok(i18n.t("compose.secretHelp", { max: 76750 }).includes("76.750"), i18n.t("compose.secretHelp", { max: 76750 }));
  assert.equal(i18n.duration(86400), "1 Tag");
});
