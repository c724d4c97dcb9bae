/**
 * tiny-random-llama (hyperonym/basaran): random weights, old transformers-4.28 config (no
 * num_key_value_heads / rope_theta / head_dim), untied lm_head, 32k vocabulary, and
 * rotary_emb.inv_freq buffers in the checkpoint. References: transformers-semantics numpy
 * float32 (/work/shared/models/tiny-random-llama-basaran/README.md).
 */
import path from "node:path";
import { readFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import type { Logger } from "../src/log.js";
import { forward } from "../src/model/forward.js";
import { generate } from "../src/model/generate.js";
import { disposeModel, loadModel, type Model } from "../src/model/load-model.js";

const DIR = path.resolve(__dirname, "../../../../shared/models/tiny-random-llama-basaran");

interface Case {
  input_ids: number[];
  logits_last_position_top32: [number, number][];
  logits_last_position_sum: number;
  argmax_per_position: number[];
  logits_first8_per_position: number[][];
  greedy_16_new_ids_no_stop: number[];
}
const ref = JSON.parse(readFileSync(path.join(DIR, "reference_outputs.json"), "utf8")) as { cases: Case[] };

/** A logger that records warnings. */
function recordingLogger(warnings: string[]): Logger {
  const log: Logger = {
    debug: () => {},
    info: () => {},
    warn: (a: object | string, b?: string) => warnings.push(typeof a === "string" ? a : (b ?? "")),
    error: () => {},
    child: () => log,
  };
  return log;
}

for (const backend of ["cpu", "wasm"] as const) {
  describe(`tiny-random-llama-basaran (${backend})`, () => {
    let model: Model;
    let before = 0;
    const warnings: string[] = [];
    beforeAll(async () => {
      await initBackend(backend);
      before = tf.memory().numTensors;
      model = await loadModel(DIR, { log: recordingLogger(warnings) });
    });
    afterAll(() => {
      disposeModel(model);
      expect(tf.memory().numTensors).toBe(before);
    });

    test("loads the old config and untied head; inv_freq buffers are skipped silently", () => {
      expect(model.config).toMatchObject({ nHeads: 2, nKvHeads: 2, headDim: 2, vocabSize: 32000, tieEmbeddings: false });
      expect(model.weights.get("lm_head.weight")?.shape).toEqual([32000, 4]);
      expect([...model.weights.keys()].some((k) => k.includes("inv_freq"))).toBe(false);
      expect(warnings).toEqual([]);
    });

    test("logits: first 8 per position, last-position top 32 and sum, argmax per position", () => {
      const n = tf.memory().numTensors;
      for (const c of ref.cases) {
        const ids = tf.tensor2d([c.input_ids], undefined, "int32");
        const out = forward(model, ids);
        const logits = (out.arraySync() as number[][][])[0] as number[][];
        tf.dispose([ids, out]);
        logits.forEach((row, t) => {
          (c.logits_first8_per_position[t] as number[]).forEach((v, j) => expect(Math.abs((row[j] as number) - v)).toBeLessThan(1e-5));
        });
        expect(logits.map((row) => row.indexOf(Math.max(...row)))).toEqual(c.argmax_per_position);
        const last = logits[logits.length - 1] as number[];
        for (const [id, v] of c.logits_last_position_top32) {
          expect(Math.abs((last[id] as number) - v)).toBeLessThan(1e-5);
        }
        expect(Math.abs(last.reduce((a, v) => a + v, 0) - c.logits_last_position_sum)).toBeLessThan(1e-3);
      }
      expect(tf.memory().numTensors).toBe(n);
    });

    test("greedy 16 new tokens without stopping, batched, equal the reference", async () => {
      const got = await generate(
        model,
        ref.cases.map((c) => c.input_ids),
        { maxNewTokens: 16, eosIds: [] },
      );
      expect(got).toEqual(ref.cases.map((c) => c.greedy_16_new_ids_no_stop));
    });
  });
}
