/**
 * Generation on stories260K against the reference greedy continuations
 * (/work/shared/models/stories260K/reference_outputs.json: 32 and 507 new tokens, stop ids [2, 1]).
 */
import path from "node:path";
import { readFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import { generate } from "../src/model/generate.js";
import { disposeModel, loadModel, type Model } from "../src/model/load-model.js";

const DIR = path.resolve(__dirname, "../../../../shared/models/stories260K");

interface Greedy {
  prompt: string;
  input_ids: number[];
  max_new_tokens: number;
  stop_token_ids: number[];
  output_ids: number[];
  stopped_on_stop_id: boolean;
}
const ref = JSON.parse(readFileSync(path.join(DIR, "reference_outputs.json"), "utf8")) as { greedy: Greedy[] };

/** The reference lists the new ids without the stop id; generate() ends a stopped row with it. */
function expectMatches(got: number[], r: Greedy): void {
  if (r.stopped_on_stop_id) {
    expect(r.stop_token_ids).toContain(got[got.length - 1]);
    expect(got.slice(0, -1)).toEqual(r.output_ids);
  } else {
    expect(got).toEqual(r.output_ids);
  }
}

for (const backend of ["cpu", "wasm"] as const) {
  describe(`stories260K generate (${backend})`, () => {
    let model: Model;
    let before = 0;
    beforeAll(async () => {
      await initBackend(backend);
      before = tf.memory().numTensors;
      model = await loadModel(DIR);
    });
    afterAll(() => {
      disposeModel(model);
      expect(tf.memory().numTensors).toBe(before);
    });

    for (const n of [32, 507]) {
      test(`greedy ${n} new tokens, both prompts in one batch, equal the reference`, async () => {
        const cases = ref.greedy.filter((g) => g.max_new_tokens === n);
        expect(cases).toHaveLength(2);
        const got = await generate(
          model,
          cases.map((g) => g.input_ids),
          { maxNewTokens: n, eosIds: [2, 1] },
        );
        cases.forEach((g, i) => expectMatches(got[i] as number[], g));
      });
    }
  });
}

// The backend-independent behaviour runs on wasm only: cpu spends ~90% of each decode step
// transposing weights inside linear(), so it gets the reference runs alone.
describe("generate behaviour (wasm)", () => {
  let model: Model;
  let before = 0;
  beforeAll(async () => {
    await initBackend("wasm");
    before = tf.memory().numTensors;
    model = await loadModel(DIR);
  });
  afterAll(() => {
    disposeModel(model);
    expect(tf.memory().numTensors).toBe(before);
  });

  test("batched greedy equals one-at-a-time greedy (left padding)", async () => {
    const prompts = [ref.greedy[0]!.input_ids, [1, 403], ref.greedy[2]!.input_ids.concat([265, 282, 295, 433, 426])];
    const n = tf.memory().numTensors;
    const batched = await generate(model, prompts, { maxNewTokens: 24 });
    const alone = [];
    for (const p of prompts) {
      alone.push((await generate(model, [p], { maxNewTokens: 24 }))[0]);
    }
    expect(batched).toEqual(alone);
    expect(batched.map((b) => b.length)).toEqual(prompts.map(() => 24));
    expect(tf.memory().numTensors).toBe(n);
  });

  test("seeded sampling is reproducible; topK 1 is greedy", async () => {
    const prompts = [ref.greedy[0]!.input_ids, [1, 403]];
    const a = await generate(model, prompts, { maxNewTokens: 20, temperature: 1, topP: 0.9, seed: 7 });
    const b = await generate(model, prompts, { maxNewTokens: 20, temperature: 1, topP: 0.9, seed: 7 });
    const c = await generate(model, prompts, { maxNewTokens: 20, temperature: 1, topP: 0.9, seed: 8 });
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    const greedy = await generate(model, prompts, { maxNewTokens: 20 });
    expect(await generate(model, prompts, { maxNewTokens: 20, temperature: 0.7, topK: 1, seed: 3 })).toEqual(greedy);
  });

  test("finished rows stop; nothing for maxNewTokens 0; bad prompts are InputErrors", async () => {
    const [r] = await generate(model, [ref.greedy[0]!.input_ids], { maxNewTokens: 5, eosIds: [432] }); // 432 is the first greedy token
    expect(r).toEqual([432]);
    expect(await generate(model, [[1], [1, 2]], { maxNewTokens: 0 })).toEqual([[], []]);
    await expect(generate(model, [[]], { maxNewTokens: 1 })).rejects.toThrow(/prompt 0 is empty/);
    await expect(generate(model, [[1, 512]], { maxNewTokens: 1 })).rejects.toThrow(/token id 512, outside the vocabulary \[0, 512\)/);
  });
});
