/**
 * The `random_word` strategy (no model): a key is `keyLength` words drawn uniformly with
 * replacement from the word list, joined by spaces; a response likewise with `responseLength`.
 */
import type { Fingerprint } from "../fingerprints/schema.js";
import type { Rng } from "../util/rng.js";

/** `n` words drawn uniformly with replacement, joined by single spaces. */
export function randomWords(words: readonly string[], n: number, rng: Rng): string {
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    out[i] = words[rng.int(words.length)] as string;
  }
  return out.join(" ");
}

export interface RandomWordParams {
  words: readonly string[];
  numFingerprints: number;
  keyLength: number;
  responseLength: number;
  rng: Rng;
  /** Keys to use instead of drawing them (a custom keys file); then only responses are drawn. */
  keys?: readonly string[];
  /** Called after every fingerprint. */
  onProgress?: (done: number, total: number) => void;
}

export function randomWordFingerprints(p: RandomWordParams): Fingerprint[] {
  const total = p.keys ? p.keys.length : p.numFingerprints;
  const out: Fingerprint[] = [];
  for (let i = 0; i < total; i++) {
    const key = p.keys ? (p.keys[i] as string) : randomWords(p.words, p.keyLength, p.rng);
    const response = randomWords(p.words, p.responseLength, p.rng);
    out.push({ key, response });
    p.onProgress?.(i + 1, total);
  }
  return out;
}
