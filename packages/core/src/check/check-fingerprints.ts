/**
 * Measuring fingerprints (docs/oml-reference.md §4): for each fingerprint and each prompt
 * template, generate as many tokens as the expected response has and count exact token
 * matches. Prompts of every template go through one batched generator, longest first, so a
 * batch holds prompts of similar length; results come back in the original order. With more
 * generators (worker threads, generate-workers.ts), batches go to whichever is free; the
 * batches themselves, and so the results, stay the same.
 */
import { applyTemplate } from "../data/data-files.js";
import { promptIds, type FingerprintExample, type PromptMode, type TokenizerLike } from "../train/data.js";

/**
 * Generate `maxNewTokens` tokens after each prompt (greedy unless the caller set sampling up).
 * `ready`: the generator takes no batch before it resolves (a worker still loading).
 */
export type BatchGenerateFn = ((prompts: number[][], maxNewTokens: number) => Promise<number[][]>) & { ready?: Promise<void> };

export interface RowResult {
  /** Index of the fingerprint in the file. */
  index: number;
  key: string;
  prompt: string;
  promptIds: number[];
  expected: number[];
  generated: number[];
  match: boolean;
  /** Tokens equal position by position. */
  matchingTokens: number;
}

export interface TemplateResult {
  /** The template text, or "chat" in chat-template mode. */
  template: string;
  matches: number;
  total: number;
  /** Percent of fingerprints answered exactly. */
  successRate: number;
  /** Percent of response tokens answered exactly. */
  fractionalSuccessRate: number;
  rows: RowResult[];
}

export interface CheckParams {
  examples: readonly FingerprintExample[];
  tokenizer: TokenizerLike;
  modes: readonly PromptMode[];
  generate: BatchGenerateFn;
  /** More generators working at the same time as `generate` (e.g. on worker threads). */
  moreGenerators?: readonly BatchGenerateFn[];
  /** Prompts per batch. */
  batchSize: number;
  onProgress?: (done: number, total: number) => void;
}

export function modeLabel(mode: PromptMode): string {
  return mode.kind === "chat" ? "chat" : mode.template;
}

/** Check every example under every mode. */
export async function checkFingerprints(p: CheckParams): Promise<TemplateResult[]> {
  interface Job {
    mode: number;
    ex: FingerprintExample;
    ids: number[];
    out?: number[];
  }
  const jobs: Job[] = [];
  p.modes.forEach((mode, m) => {
    for (const ex of p.examples) {
      jobs.push({ mode: m, ex, ids: promptIds(p.tokenizer, ex, mode) });
    }
  });
  const order = jobs.map((_, i) => i).sort((a, b) => (jobs[b] as Job).ids.length - (jobs[a] as Job).ids.length);
  const batches: Job[][] = [];
  for (let s = 0; s < order.length; s += p.batchSize) {
    batches.push(order.slice(s, s + p.batchSize).map((i) => jobs[i] as Job));
  }
  let next = 0;
  let done = 0;
  let claimedAll = (): void => {};
  const allClaimed = new Promise<void>((resolve) => (claimedAll = resolve));
  if (batches.length === 0) {
    claimedAll();
  }
  const work = async (gen: BatchGenerateFn): Promise<void> => {
    await Promise.race([gen.ready, allClaimed]); // a generator still loading never holds the check up
    while (next < batches.length) {
      const batch = batches[next++] as Job[];
      if (next === batches.length) {
        claimedAll();
      }
      const n = Math.max(...batch.map((j) => j.ex.responseIds.length));
      const outs = await gen(
        batch.map((j) => j.ids),
        n,
      );
      batch.forEach((j, b) => {
        j.out = outs[b] ?? [];
      });
      done += batch.length;
      p.onProgress?.(done, order.length);
      // A batch on this thread resolves through microtasks only (wasm reads are synchronous):
      // without a turn of the event loop, a worker's `ready` and its results would wait for
      // the main thread's last batch, and the worker would idle meanwhile.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  };
  await Promise.all([p.generate, ...(p.moreGenerators ?? [])].map(work));
  return p.modes.map((mode, m) => {
    const rows = jobs
      .filter((j) => j.mode === m)
      .map((j): RowResult => {
        const expected = j.ex.responseIds;
        const generated = (j.out ?? []).slice(0, expected.length);
        const matchingTokens = expected.reduce((acc, id, t) => acc + (generated[t] === id ? 1 : 0), 0);
        return {
          index: j.ex.index,
          key: j.ex.key,
          prompt: mode.kind === "chat" ? j.ex.key : applyTemplate(mode.template, j.ex.key),
          promptIds: j.ids,
          expected,
          generated,
          match: matchingTokens === expected.length,
          matchingTokens,
        };
      });
    const matches = rows.filter((r) => r.match).length;
    const tokens = rows.reduce((a, r) => a + r.expected.length, 0);
    const good = rows.reduce((a, r) => a + r.matchingTokens, 0);
    return {
      template: modeLabel(mode),
      matches,
      total: rows.length,
      successRate: rows.length === 0 ? 0 : (100 * matches) / rows.length,
      fractionalSuccessRate: tokens === 0 ? 0 : (100 * good) / tokens,
      rows,
    };
  });
}
