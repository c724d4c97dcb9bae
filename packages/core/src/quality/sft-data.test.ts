import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import type { TokenizerLike } from "../train/data.js";
import { IGNORE_INDEX } from "../train/loss.js";
import { encodeSftData, encodeSftRecord, readSftData } from "./sft-data.js";

const X = IGNORE_INDEX;
/** One token per character, id = char code; BOS 1, EOS 2; chat: "U:" + content + "A:". */
const tok: TokenizerLike = {
  encode: (text, opts) => [...(opts?.addSpecialTokens === false ? [] : [1]), ...[...text].map((c) => c.charCodeAt(0))],
  decode: (ids) => String.fromCharCode(...ids.filter((i) => i > 2)),
  bosId: 1,
  eosId: 2,
  addsBos: true,
  addsEos: false,
  hasChatTemplate: true,
  applyChatTemplate: (m) => `U:${m[0]?.content ?? ""}A:`,
};
const plain = { kind: "template", template: "{}" } as const;

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "oml-sft-"));
});

describe("encodeSftRecord", () => {
  test("{prompt, response}: BOS + prompt, then response + EOS; loss on the response and EOS only", () => {
    expect(encodeSftRecord(tok, { prompt: "ab", response: "c" }, { mode: plain, maxLength: 64 })).toEqual({
      inputIds: [1, 97, 98, 99, 2],
      labels: [X, X, X, 99, 2],
    });
  });

  test("{text}: BOS + text + EOS, loss on every token after BOS", () => {
    expect(encodeSftRecord(tok, { text: "hi" }, { mode: plain, maxLength: 64 })).toEqual({ inputIds: [1, 104, 105, 2], labels: [X, 104, 105, 2] });
  });

  test("chat mode puts the prompt in the user turn", () => {
    const row = encodeSftRecord(tok, { prompt: "q", response: "r" }, { mode: { kind: "chat" }, maxLength: 64 });
    expect(row?.inputIds).toEqual([..."U:qA:"].map((c) => c.charCodeAt(0)).concat([114, 2]));
    expect(row?.labels.filter((l) => l !== X)).toEqual([114, 2]);
  });

  test("cut to maxLength; a row whose response is cut away entirely is dropped", () => {
    expect(encodeSftRecord(tok, { prompt: "ab", response: "cd" }, { mode: plain, maxLength: 4 })).toEqual({ inputIds: [1, 97, 98, 99], labels: [X, X, X, 99] });
    expect(encodeSftRecord(tok, { prompt: "abc", response: "d" }, { mode: plain, maxLength: 4 })).toBeNull();
    const { rows, truncated, dropped } = encodeSftData(tok, [{ text: "hello" }, { prompt: "abcdef", response: "g" }, { text: "ok" }], { mode: plain, maxLength: 5 });
    expect(rows.map((r) => r.inputIds)).toEqual([[1, 104, 101, 108, 108], [1, 111, 107, 2]]);
    expect(truncated).toBe(2);
    expect(dropped).toBe(1);
  });
});

describe("readSftData", () => {
  test("reads both record kinds, skipping blank lines", async () => {
    const f = path.join(root, "ok.jsonl");
    await writeFile(f, '{"prompt": "a", "response": "b"}\n\n{"text": "c"}\n');
    expect(await readSftData(f)).toEqual([{ prompt: "a", response: "b" }, { text: "c" }]);
  });

  test.each([
    ['{"prompt": "a"}', /:1: response: expected a string$/],
    ['{"text": 5}', /:1: text: expected a string$/],
    ['{"other": 1}', /:1: expected \{"prompt": …, "response": …\} or \{"text": …\}$/],
    ["not json", /:1: not valid JSON$/],
  ])("%s is rejected with file:line", async (line, message) => {
    const f = path.join(root, "bad.jsonl");
    await writeFile(f, `${line}\n`);
    await expect(readSftData(f)).rejects.toThrow(message);
  });

  test("an empty file and a missing file", async () => {
    const f = path.join(root, "empty.jsonl");
    await writeFile(f, "\n");
    await expect(readSftData(f)).rejects.toThrow(`${f}: no records`);
    await expect(readSftData(path.join(root, "nope.jsonl"))).rejects.toThrow(/nope.jsonl: cannot read the SFT data \(ENOENT\)/);
  });
});
