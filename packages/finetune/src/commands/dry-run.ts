/** `oml-finetune --dry-run`: core's planFinetune() rendered as a table (or JSON); loads and writes nothing. */
import { formatBytes, planFinetune, RAM_SHARE, type FinetuneOptionsInput, type FinetunePlan } from "@oml-ts/core";
import type { Logger } from "@oml-ts/core";

const BACKEND_LABELS: Record<FinetunePlan["backends"][number]["backend"], string> = {
  wasm: "wasm",
  cpu: "cpu",
  "tensorflow-cpu": "tensorflow (CPU)",
  "tensorflow-gpu": "tensorflow (GPU)",
};

const int = (n: number): string => n.toLocaleString("en-US");

/** The human-readable plan (stdout). */
export function formatPlan(p: FinetunePlan): string {
  const b = p.bytes;
  const perParam = (bytes: number): string => (bytes === 0 ? "" : String(Math.round(bytes / p.parameters)));
  const lines: string[] = [];
  lines.push(`memory plan (--dry-run: config.json read, no weights loaded, nothing written)`);
  lines.push(`model:       ${p.model}${p.model === p.dir ? "" : ` (${p.dir})`}`);
  lines.push(`             ${p.modelType}, ${int(p.parameters)} parameters (float32)`);
  const r = p.rows;
  lines.push(
    `training:    ${p.mode === "sft" ? "SFT" : "fingerprints"}, ${r.batchSize} rows × ${r.seqLen} tokens a micro-batch (${r.seqLenFrom}), ${int(r.microBatches)} micro-batches an epoch`,
  );
  if (p.workers > 0) {
    lines.push(`             split over the main thread and ${p.workers} worker${p.workers > 1 ? "s" : ""}: ${r.threadRows} rows a thread`);
  }
  if (r.benign) {
    lines.push(`             + ${r.benign.batchSize} benign rows × ${r.benign.seqLen} tokens${r.benign.klTopK === null ? "" : `, KL top-${r.benign.klTopK} targets for ${int(r.benign.pool)} rows`}`);
  }
  if (r.accumulation > 1) {
    lines.push(`             ${int(r.accumulation)} micro-batches summed per optimizer step (--gradient-accumulation)`);
  }
  lines.push(`             forgetting strength λ ${p.lambda}${p.lambda > 0 ? " (w0 read back from the model's files, not kept)" : " (no averaging)"}`);
  lines.push("");
  const parts: [string, number, string][] = [
    ["weights", b.weights, "tfjs heap"],
    ["gradients", b.gradients, r.accumulation > 1 ? "tfjs heap (a micro-batch's + the accumulator's sums)" : "tfjs heap"],
    ["activations", b.activations, "tfjs heap (estimate, kept for the backward pass)"],
    ["AdamW moments", b.optimizer, "RAM, outside tfjs"],
    ["KL targets", b.klTargets, "RAM, outside tfjs"],
    ...(p.workers > 0 ? [[`${p.workers} worker${p.workers > 1 ? "s" : ""}`, b.workers, "RAM, outside the main tfjs heap (replicas, gradient buffers, shared weights)"] as [string, number, string]] : []),
  ];
  const perParamParts = new Set(["weights", "gradients", "AdamW moments"]);
  const rows = parts.map(([name, bytes, where]) => [name, formatBytes(bytes), perParamParts.has(name) ? perParam(bytes) : "", where]);
  rows.push(["tfjs heap", formatBytes(b.tfjsHeap), "", ""], ["total", formatBytes(b.total), "", ""]);
  const w0 = Math.max(...rows.map((x) => (x[0] as string).length));
  const w1 = Math.max(...rows.map((x) => (x[1] as string).length));
  lines.push(`${"part".padEnd(w0)}  ${"bytes".padStart(w1)}  B/param  held in`);
  for (const [name, bytes, pp, where] of rows) {
    lines.push(`${(name as string).padEnd(w0)}  ${(bytes as string).padStart(w1)}  ${(pp as string).padStart(7)}  ${where}`.trimEnd());
  }
  lines.push(`not in memory: ${p.lambda > 0 ? "the anchor w0 (read from the model's files at each averaging), " : ""}the best weights (.partial/best-epoch-N.safetensors)`);
  lines.push("");
  const table = p.backends.map((f) => [
    BACKEND_LABELS[f.backend],
    f.fits === null ? "?" : f.fits ? "yes" : "no",
    f.heapIn === "wasm" ? `${formatBytes(b.tfjsHeap)} of ${formatBytes(f.heapLimit as number)} (wasm)` : f.heapIn === "GPU" ? `${formatBytes(b.tfjsHeap)} of the GPU's memory` : "in RAM",
    `${formatBytes(f.ramNeeds)} of ${formatBytes(f.ramLimit)}`,
  ]);
  table.unshift(["backend", "fits", "tfjs heap", `RAM (${Math.round(RAM_SHARE * 100)}% of ${formatBytes(p.ramBytes)})`]);
  const widths = [0, 1, 2].map((i) => Math.max(...table.map((x) => (x[i] as string).length)));
  for (const row of table) {
    lines.push(row.map((c, i) => (i < 3 ? c.padEnd(widths[i] as number) : c)).join("  "));
  }
  lines.push("");
  const be = p.backend;
  lines.push(`backend:     --backend ${be.requested} → ${be.chosen ?? "none"}${be.source && be.chosen !== be.requested ? ` (${be.source})` : ""}: ${be.why}`);
  if (be.error) {
    lines.push(`             the run would stop: ${be.error}`);
  }
  lines.push(`verdict:     ${p.verdict}`);
  lines.push(`             (a plan of what the run holds; the process's peak RSS runs higher, hence ${Math.round(RAM_SHARE * 100)}% of RAM: see the README, "What fits where")`);
  return `${lines.join("\n")}\n`;
}

export async function runDryRun(options: FinetuneOptionsInput, json: boolean, log: Logger): Promise<void> {
  const plan = await planFinetune(options, { log });
  process.stdout.write(json ? `${JSON.stringify(plan)}\n` : formatPlan(plan));
}
