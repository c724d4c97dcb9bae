/** Glue between the parsed flags and core's finetune(). */
import { finetune, InputError, summaryLine, type FinetuneOptionsInput } from "@oml-ts/core";
import { createLogger, createProgress } from "@oml-ts/core/cli";
import { runDryRun } from "./dry-run.js";

export type FinetuneFlags = Omit<FinetuneOptionsInput, "fingerprintGenerationStrategy"> & {
  fingerprintGenerationStrategy?: string;
  logFile?: string;
  quiet?: boolean;
  dryRun?: boolean;
  json?: boolean;
};

export async function runFinetuneCommand(flags: FinetuneFlags): Promise<void> {
  const { logFile, quiet, dryRun, json, ...rest } = flags;
  if (json && !dryRun) {
    throw new InputError("--json goes with --dry-run (a run prints its result directory)", { hint: "add --dry-run, or drop --json" });
  }
  const log = createLogger({ quiet, file: logFile });
  const options: FinetuneOptionsInput = {
    ...rest,
    fingerprintGenerationStrategy: rest.fingerprintGenerationStrategy === "english_random_responses" ? "english_random_response" : (rest.fingerprintGenerationStrategy as FinetuneOptionsInput["fingerprintGenerationStrategy"]),
    useAugmentationPrompts: Boolean(rest.useAugmentationPrompts),
    keepEosInResponse: Boolean(rest.keepEosInResponse),
    useChatTemplate: Boolean(rest.useChatTemplate),
    resume: Boolean(rest.resume),
    force: Boolean(rest.force),
    trainPastSuccess: Boolean(rest.trainPastSuccess),
  };
  if (dryRun) {
    await runDryRun(options, Boolean(json), log);
    return;
  }
  let progress = createProgress({ label: "epoch", log, quiet });
  const result = await finetune(
    options,
    {
      log,
      onEvent: (e) => {
        switch (e.type) {
          case "phase":
            log.info({ detail: e.detail }, e.phase);
            break;
          case "epoch-start":
            progress.stop();
            progress = createProgress({ label: `epoch ${e.epoch}/${e.epochs}`, log, quiet, logEnds: false });
            break;
          case "micro-batch":
            progress.update(e.done, e.total, { loss: e.meanLoss.toFixed(4), "tok/s": Math.round(e.tokens / Math.max(e.seconds, 1e-9)) });
            break;
          case "step":
            log.debug({ step: e.step, lr: e.lr, loss: e.loss, gradNorm: e.gradNorm }, "optimizer step");
            break;
          case "epoch-end": {
            progress.stop();
            const extra = [
              e.successRate === null ? "" : `, ${e.successRate.toFixed(1)}% of fingerprints answered`,
              e.benignLoss === undefined ? "" : `, benign loss ${e.benignLoss.toFixed(4)}`,
              e.kl === undefined ? "" : `, KL ${e.kl.toFixed(4)}`,
            ].join("");
            log.info(
              {
                epoch: e.epoch,
                loss: Number(e.loss.toFixed(5)),
                success: e.successRate === null ? undefined : Number(e.successRate.toFixed(2)),
                benignLoss: e.benignLoss,
                kl: e.kl,
                seconds: Number(e.seconds.toFixed(2)),
                best: e.best,
              },
              `epoch ${e.epoch}: loss ${e.loss.toFixed(4)}${extra}`,
            );
            break;
          }
        }
      },
    },
  );
  progress.stop();
  if (result.summary) {
    const s = result.summary;
    log.info({ success: s.success_rate, epochs: s.epochs_run, seconds: Number(s.wall_seconds.toFixed(1)), heldout: s.heldout }, summaryLine(s));
  }
  process.stdout.write(`${result.dir}\n`);
}
