/** oml-check's default --batch-size: the largest of 256, 128, 64 whose inference plan fits 512 MiB of activations. */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";
import { loadModelConfig } from "../model/load-model.js";
import { defaultCheckBatchSize } from "./run-check.js";

const SHARED = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../../shared/models");

test("stories260K (vocabulary 512) checks 256 prompts a batch; a 32000-token vocabulary 64", async () => {
  expect(defaultCheckBatchSize((await loadModelConfig(path.join(SHARED, "stories260K"))).config)).toBe(256);
  expect(defaultCheckBatchSize((await loadModelConfig(path.join(SHARED, "tiny-random-llama-basaran"))).config)).toBe(64);
});
