import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { TokenizerError } from "../errors.js";
import { createByteLevelTokenizer } from "./byte-level-tokenizer.js";
import { loadTokenizer } from "./load-tokenizer.js";

const stories = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../../shared/models/stories260K");

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "oml-loadtok-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A model directory with the byte-level tokenizer, some files replaced or removed. */
async function byteLevelDir(name: string, files: Record<string, unknown> = {}): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(dir);
  for (const [file, json] of Object.entries({ ...createByteLevelTokenizer(), ...files })) {
    if (json !== undefined) {
      await writeFile(path.join(dir, file), typeof json === "string" ? json : JSON.stringify(json));
    }
  }
  return dir;
}

/** stories260K's tokenizer files with tokenizer_config.json changed. */
async function storiesDir(name: string, config: Record<string, unknown>): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(dir);
  await copyFile(path.join(stories, "tokenizer.json"), path.join(dir, "tokenizer.json"));
  const base = JSON.parse(await readFile(path.join(stories, "tokenizer_config.json"), "utf8")) as Record<string, unknown>;
  await writeFile(path.join(dir, "tokenizer_config.json"), JSON.stringify({ ...base, ...config }));
  return dir;
}

async function loadError(dir: string): Promise<TokenizerError> {
  const err: unknown = await loadTokenizer(dir).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TokenizerError);
  return err as TokenizerError;
}

describe("loadTokenizer errors name the file and a fix", () => {
  test("missing directory", async () => {
    const err = await loadError(path.join(tmp, "nope"));
    expect(err.message).toBe(`${path.join(tmp, "nope")}: model directory not found`);
    expect(err.exitCode).toBe(2);
  });

  test("missing tokenizer.json", async () => {
    const dir = await byteLevelDir("no-json", { "tokenizer.json": undefined });
    const err = await loadError(dir);
    expect(err.message).toBe(`${dir}/tokenizer.json: not found`);
    expect(err.hint).toMatch(/tokenizer\.model.*save_pretrained/);
  });

  test("missing tokenizer_config.json", async () => {
    const dir = await byteLevelDir("no-config", { "tokenizer_config.json": undefined });
    expect((await loadError(dir)).message).toBe(`${dir}/tokenizer_config.json: not found`);
  });

  test("JSON syntax error, with line and column", async () => {
    const dir = await byteLevelDir("bad-json", { "special_tokens_map.json": '{\n  "bos_token": "<s>",\n}' });
    expect((await loadError(dir)).message).toMatch(new RegExp(`^${dir}/special_tokens_map\\.json:3:1: not valid JSON`));
  });

  test("a field of the wrong type", async () => {
    const config = { ...createByteLevelTokenizer()["tokenizer_config.json"], padding_side: "middle" };
    const dir = await byteLevelDir("bad-field", { "tokenizer_config.json": config });
    expect((await loadError(dir)).message).toMatch(new RegExp(`^${dir}/tokenizer_config\\.json: padding_side: `));
  });

  test("a tokenizer.json without a model", async () => {
    const dir = await byteLevelDir("no-model", { "tokenizer.json": { added_tokens: [] } });
    expect((await loadError(dir)).message).toMatch(new RegExp(`^${dir}/tokenizer\\.json: model: `));
  });

  test("a component the library does not know", async () => {
    const json = { ...createByteLevelTokenizer()["tokenizer.json"], decoder: { type: "Bogus" } };
    const dir = await byteLevelDir("bogus", { "tokenizer.json": json });
    expect((await loadError(dir)).message).toMatch(/tokenizer\.json: @huggingface\/tokenizers cannot build this tokenizer: Unknown Decoder type: Bogus/);
  });

  test("an eos_token that is not in the vocabulary", async () => {
    const dir = await byteLevelDir("bad-eos", { "special_tokens_map.json": { eos_token: "<end>" } });
    expect((await loadError(dir)).message).toBe(`${dir}/tokenizer_config.json: eos_token "<end>" is not a token of tokenizer.json`);
  });

  test("a relative path is resolved against the current directory", async () => {
    const dir = await byteLevelDir("relative");
    const tok = await loadTokenizer(path.relative(process.cwd(), dir));
    expect(tok.source).toBe(dir);
  });
});

describe("what loadTokenizer reads besides tokenizer.json", () => {
  test("special_tokens_map.json overrides tokenizer_config.json", async () => {
    const dir = await byteLevelDir("map-wins", { "special_tokens_map.json": { eos_token: { content: "<pad>" }, pad_token: "<unk>" } });
    const tok = await loadTokenizer(dir);
    expect([tok.eosId, tok.padTokenId]).toEqual([3, 0]);
  });

  test("eosIds: tokenizer EOS, then generation_config.json, else config.json", async () => {
    const gen = await byteLevelDir("gen", { "generation_config.json": { eos_token_id: [2, 1] }, "config.json": { eos_token_id: 3 } });
    expect((await loadTokenizer(gen)).eosIds).toEqual([2, 1]);
    const cfg = await byteLevelDir("cfg", { "config.json": { eos_token_id: [3, 2] } });
    expect((await loadTokenizer(cfg)).eosIds).toEqual([2, 3]);
  });

  test("chat_template.jinja when tokenizer_config.json has no template", async () => {
    const { chat_template: _unused, ...config } = createByteLevelTokenizer()["tokenizer_config.json"];
    const dir = await byteLevelDir("jinja", { "tokenizer_config.json": config, "chat_template.jinja": "{{ messages | length }} turns" });
    const tok = await loadTokenizer(dir);
    expect(tok.applyChatTemplate([{ role: "user", content: "a" }])).toBe("1 turns");
  });
});

describe("Llama-class tokenizers follow add_bos_token / add_eos_token (transformers' update_post_processor)", () => {
  // stories260K: "Once upon a time" → [1, 403, 407, 261, 378] (reference_outputs.json)
  test("add_eos_token: true appends </s>", async () => {
    const tok = await loadTokenizer(await storiesDir("eos-on", { add_eos_token: true }));
    expect(tok.encode("Once upon a time")).toEqual([1, 403, 407, 261, 378, 2]);
    expect(tok.encode("Once upon a time", { addSpecialTokens: false })).toEqual([403, 407, 261, 378]);
    expect([tok.addsBos, tok.addsEos]).toEqual([true, true]);
  });

  test("add_bos_token: false drops <s>", async () => {
    const tok = await loadTokenizer(await storiesDir("bos-off", { add_bos_token: false }));
    expect(tok.encode("Once upon a time")).toEqual([403, 407, 261, 378]);
    expect([tok.addsBos, tok.addsEos]).toEqual([false, false]);
  });

  test("other classes keep tokenizer.json's post-processor", async () => {
    const tok = await loadTokenizer(await storiesDir("fast-class", { tokenizer_class: "PreTrainedTokenizerFast", add_eos_token: true }));
    expect(tok.encode("Once upon a time")).toEqual([1, 403, 407, 261, 378]);
    expect(tok.paddingSide).toBe("right");
  });

  test("add_eos_token without an eos_token is an error", async () => {
    const err = await loadError(await storiesDir("no-eos", { add_eos_token: true, eos_token: null }));
    expect(err.message).toMatch(/tokenizer_config\.json: add_eos_token is true but the eos token is not set/);
  });
});
