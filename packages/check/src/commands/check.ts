/** Glue between the parsed flags and core's runCheck(); renders the table or JSON. */
import { runCheck, type CheckReport, type RunCheckOptions } from "@oml-ts/core";
import { createLogger, createProgress } from "@oml-ts/core/cli";

function pct(x: number): string {
  return `${x.toFixed(2)}%`;
}

/** The human-readable report (stdout). */
export function formatReport(r: CheckReport): string {
  const lines: string[] = [];
  lines.push(`model:        ${r.model}`);
  lines.push(`fingerprints: ${r.fingerprints_file} (${r.num_fingerprints})`);
  lines.push("");
  const w = Math.max(8, ...r.templates.map((t) => JSON.stringify(t.template).length));
  lines.push(`${"template".padEnd(w)}  success   per-token  matches`);
  for (const t of r.templates) {
    lines.push(`${JSON.stringify(t.template).padEnd(w)}  ${pct(t.success_rate).padStart(7)}  ${pct(t.fractional_success_rate).padStart(9)}  ${t.matches}/${r.num_fingerprints}`);
  }
  lines.push("");
  lines.push(`success rate: ${pct(r.success_rate)} (${r.matches}/${r.num_fingerprints}), per-token ${pct(r.fractional_success_rate)}; ${r.backend}, ${r.seconds.toFixed(1)} s`);
  for (const f of r.failures ?? []) {
    lines.push("");
    lines.push(`✗ [${f.index}] template ${JSON.stringify(f.template)}`);
    lines.push(`  key:       ${JSON.stringify(f.key)}`);
    lines.push(`  expected:  ${JSON.stringify(f.expected)}`);
    lines.push(`  generated: ${JSON.stringify(f.generated)}`);
    lines.push(`  top-10:    ${f.top.map((t) => `${JSON.stringify(t.token)} ${t.prob.toFixed(3)}`).join(", ")}`);
  }
  if (r.verify) {
    const v = r.verify;
    lines.push("");
    lines.push(`verify: ${v.matches}/${v.queries} queried keys answered; q = ${v.q.toPrecision(3)} (${v.qSource})`);
    lines.push(`        ${v.statement}`);
  }
  return `${lines.join("\n")}\n`;
}

export async function runCheckCommand(opts: Record<string, unknown>, explicit: Set<string>): Promise<void> {
  const log = createLogger({ quiet: Boolean(opts.quiet), file: opts.logFile as string | undefined });
  const progress = createProgress({ label: "check", log, quiet: Boolean(opts.quiet) || Boolean(opts.json) });
  const report = await runCheck({ ...(opts as unknown as RunCheckOptions), explicit }, { log, onProgress: (d, t) => progress.update(d, t) });
  progress.stop();
  process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : formatReport(report));
  const below = report.success_rate < (opts.minSuccess as number);
  const notOwned = report.verify !== undefined && !report.verify.owned;
  process.exitCode = below || notOwned ? 1 : 0;
}
