/**
 * Rendering core's progress events: a bar on stderr when both stderr and stdout are TTYs
 * (npm's rule: a bar looks wrong when stdout is piped), otherwise a log line at most every
 * `intervalMs` and at the end.
 */
import cliProgress from "cli-progress";
import type { Logger } from "../log.js";

export interface ProgressReporter {
  update(done: number, total: number, info?: Record<string, string | number>): void;
  stop(): void;
}

export interface ProgressOptions {
  label: string;
  log: Logger;
  quiet?: boolean;
  /** Minimum time between log lines when not on a TTY. */
  intervalMs?: number;
  /** Off a TTY, log the first update and the last one as well (default true). */
  logEnds?: boolean;
}

export function createProgress(opts: ProgressOptions): ProgressReporter {
  const tty = Boolean(process.stderr.isTTY && process.stdout.isTTY) && !process.env.CI;
  if (opts.quiet) {
    return { update: () => {}, stop: () => {} };
  }
  if (tty) {
    let bar: cliProgress.SingleBar | undefined;
    return {
      update(done, total, info = {}) {
        const extra = Object.entries(info)
          .map(([k, v]) => `${k} ${v}`)
          .join(" | ");
        if (!bar) {
          bar = new cliProgress.SingleBar(
            { stream: process.stderr, format: `${opts.label} [{bar}] {value}/{total} | ETA {eta_formatted} {extra}`, hideCursor: true, clearOnComplete: false },
            cliProgress.Presets.shades_classic,
          );
          bar.start(total, done, { extra });
        }
        bar.setTotal(total);
        bar.update(done, { extra });
      },
      stop() {
        bar?.stop();
        bar = undefined;
      },
    };
  }
  const interval = opts.intervalMs ?? 10_000;
  const logEnds = opts.logEnds ?? true;
  let last = logEnds ? 0 : Date.now();
  return {
    update(done, total, info = {}) {
      const now = Date.now();
      if ((logEnds && done === total) || now - last >= interval) {
        last = now;
        opts.log.info({ ...info, done, total }, `${opts.label}: ${done}/${total}`);
      }
    },
    stop() {},
  };
}
