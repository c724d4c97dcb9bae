/**
 * Ordinary supervised fine-tuning data (`oml-finetune --sft-data FILE`): what a downstream
 * user would train a published model on. JSONL, one record per line:
 *   {"prompt": …, "response": …}   loss on the response (and the EOS after it) only
 *   {"text": …}                    loss on every token
 * Rows are encoded like fingerprints (train/data.ts): the prompt goes through the same prompt
 * mode (BOS + prompt ids for the plain "{}" template, the user turn with --use-chat-template),
 * the response is encoded without special tokens and followed by EOS; a text is BOS + its
 * ids + EOS. Rows longer than `maxLength` lose their tail; rows left with nothing to learn are
 * dropped (and counted).
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { InputError } from "../errors.js";
import { promptIds, type EncodedRow, type PromptMode, type TokenizerLike } from "../train/data.js";
import { IGNORE_INDEX } from "../train/loss.js";

const str = z.string({ error: "expected a string" });
const PairRecordSchema = z.object({ prompt: str, response: str });
const TextRecordSchema = z.object({ text: str });
export const SftRecordSchema = z.union([PairRecordSchema, TextRecordSchema], {
  error: 'expected {"prompt": …, "response": …} or {"text": …}',
});
export type SftRecord = z.infer<typeof SftRecordSchema>;

const HINT = 'write one JSON object per line: {"prompt": …, "response": …} or {"text": …}';

/** Read a JSONL SFT file; blank lines are skipped; errors name `file:line`. */
export async function readSftData(file: string): Promise<SftRecord[]> {
  let raw: string;
  try {
    raw = await readFile(file, "utf8");
  } catch (err) {
    throw new InputError(`${file}: cannot read the SFT data (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { code: "INVALID_FILE", hint: HINT, cause: err });
  }
  const out: SftRecord[] = [];
  const lines = raw.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === "") {
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new InputError(`${file}:${i + 1}: not valid JSON`, { code: "INVALID_FILE", hint: HINT });
    }
    // Validate against the kind of record the line looks like, so the message names its field.
    const keys = value !== null && typeof value === "object" && !Array.isArray(value) ? Object.keys(value) : [];
    const schema = keys.includes("text") ? TextRecordSchema : keys.includes("prompt") || keys.includes("response") ? PairRecordSchema : SftRecordSchema;
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
      throw new InputError(`${file}:${i + 1}: ${where}${issue?.message ?? "invalid record"}`, { code: "INVALID_FILE", hint: HINT });
    }
    out.push(parsed.data);
  }
  if (out.length === 0) {
    throw new InputError(`${file}: no records`, { code: "INVALID_FILE", hint: HINT });
  }
  return out;
}

/** One record as a full training row (labels IGNORE_INDEX where the loss ignores a token). */
function encodeFull(tok: TokenizerLike, rec: SftRecord, mode: PromptMode): EncodedRow {
  const eos = tok.eosId === undefined ? [] : [tok.eosId];
  if ("text" in rec) {
    const bos = tok.addsBos && tok.bosId !== undefined ? [tok.bosId] : [];
    const ids = [...tok.encode(rec.text, { addSpecialTokens: false }), ...eos];
    return { inputIds: [...bos, ...ids], labels: [...bos.map(() => IGNORE_INDEX), ...ids] };
  }
  const prompt = promptIds(tok, { key: rec.prompt, keyIds: tok.encode(rec.prompt, { addSpecialTokens: false }) }, mode);
  const response = [...tok.encode(rec.response, { addSpecialTokens: false }), ...eos];
  return { inputIds: [...prompt, ...response], labels: [...prompt.map(() => IGNORE_INDEX), ...response] };
}

/** A row cut to `maxLength` tokens; null when no label survives (labels[0] is never a target). */
function cut(row: EncodedRow, maxLength: number): EncodedRow | null {
  const labels = row.labels.slice(0, maxLength);
  return labels.slice(1).some((l) => l !== IGNORE_INDEX) ? { inputIds: row.inputIds.slice(0, maxLength), labels } : null;
}

/** One SFT record as a training row cut to `maxLength` tokens; null when nothing is left to learn. */
export function encodeSftRecord(tok: TokenizerLike, rec: SftRecord, opts: { mode: PromptMode; maxLength: number }): EncodedRow | null {
  return cut(encodeFull(tok, rec, opts.mode), opts.maxLength);
}

/** Encode every record; counts the rows cut to `maxLength` and those dropped for having nothing to learn. */
export function encodeSftData(tok: TokenizerLike, recs: readonly SftRecord[], opts: { mode: PromptMode; maxLength: number }): { rows: EncodedRow[]; truncated: number; dropped: number } {
  const rows: EncodedRow[] = [];
  let truncated = 0;
  let dropped = 0;
  for (const rec of recs) {
    const full = encodeFull(tok, rec, opts.mode);
    truncated += full.inputIds.length > opts.maxLength ? 1 : 0;
    const row = cut(full, opts.maxLength);
    if (row) {
      rows.push(row);
    } else {
      dropped++;
    }
  }
  return { rows, truncated, dropped };
}
