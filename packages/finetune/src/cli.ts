/**
 * `oml-finetune`: declarations only; the work is in commands/finetune.ts and @oml-ts/core.
 * Flags are the reference's (finetune_multigpu.py) in kebab-case; snake_case is accepted too.
 */
import { Command, Option } from "commander";
import { AVERAGING_INTERVALS, BACKEND_NAMES, FINGERPRINT_STRATEGIES, FinetuneOptionsSchema, LR_SCHEDULES, MODEL_FAMILIES } from "@oml-ts/core";
import { parseInteger, parseNumber, parseWorkers, runMain } from "@oml-ts/core/cli";
import { runFinetuneCommand } from "./commands/finetune.js";
import { version } from "./version.js";

const ALIASES = {
  "--max-num-fingerprints": "--num-fingerprints",
};

export function buildProgram(): Command {
  const d = FinetuneOptionsSchema.parse({});
  return new Command("oml-finetune")
    .description(
      "Fine-tune fingerprints into a model and write a deployable result to <results-dir>/<hash>/.\n" +
        "The defaults are the reference's, made for 7B models: --learning-rate 1e-5 barely moves a tiny model\n" +
        "(use ~1e-2 for a stories260K-sized one). snake_case spellings (--num_train_epochs …) are accepted.\n" +
        "With --sft-data FILE it runs ordinary supervised fine-tuning instead (no fingerprints), e.g. on a fingerprinted model.\n" +
        "Every run measures its cost on held-out text the base model writes itself (--eval-samples) and on --eval-text.",
    )
    .version(version)
    .option("--model-path <dir|id>", "local Hugging Face model directory (or hub id); wins over --model-family/--model-size")
    .addOption(new Option("--model-family <family>", "the reference's model families").choices([...MODEL_FAMILIES]).default(d.modelFamily))
    .option("--model-size <size>", "model size within the family", d.modelSize)
    .option("--fingerprints-file-path <file>", "fingerprints JSON written by oml-generate (default: generated_data/output_fingerprints.json; not with --sft-data)")
    .option("--sft-data <file>", "ordinary SFT instead of fingerprints: JSONL {prompt, response} (loss on the response) or {text} (loss on all tokens)")
    .option("--sft-max-length <n>", "with --sft-data: cut rows to this many tokens", parseInteger, d.sftMaxLength)
    .option("--num-fingerprints <n>", "how many fingerprints to train (alias --max-num-fingerprints)", parseInteger, d.numFingerprints)
    .option("--max-key-length <n>", "key tokens kept", parseInteger, d.maxKeyLength)
    .option("--max-response-length <n>", "response tokens trained", parseInteger, d.maxResponseLength)
    .addOption(
      new Option("--fingerprint-generation-strategy <s>", "how the responses were made (english_random_responses is accepted)")
        .choices([...FINGERPRINT_STRATEGIES, "english_random_responses"])
        .default(d.fingerprintGenerationStrategy),
    )
    .option("--num-train-epochs <n>", "epochs at most", parseInteger, d.numTrainEpochs)
    .option("--learning-rate <lr>", "peak AdamW learning rate (1e-5 suits 7B models; ~1e-2 tiny ones)", parseNumber, d.learningRate)
    .option("--weight-decay <wd>", "AdamW decoupled weight decay", parseNumber, d.weightDecay)
    .option("--batch-size <n>", "fingerprints per micro-batch", parseInteger, d.batchSize)
    .option("--gradient-accumulation <n>", "micro-batches per optimizer step (default: all, one step per epoch as the reference; 1 with --sft-data)", parseInteger)
    .addOption(new Option("--lr-schedule <s>", "learning-rate schedule (default: constant when forgetting strength > 0, else linear)").choices([...LR_SCHEDULES]))
    .option("--warmup-steps <n>", "linear warmup steps", parseInteger, d.warmupSteps)
    .option("--max-grad-norm <x>", "clip the global gradient norm (0 = off)", parseNumber, d.maxGradNorm)
    .option("--data-split <x>", "start at fingerprint data_split × num_fingerprints", parseNumber, d.dataSplit)
    .option("--forgetting-regularizer-strength <λ>", "weight averaging w ← (1−λ)·w + λ·w0, 0 ≤ λ ≤ 1 (default 0.75; 0 with --sft-data)", parseNumber)
    .addOption(new Option("--averaging-interval <when>", "average after each epoch (the reference) or after each optimizer step").choices([...AVERAGING_INTERVALS]).default(d.averagingInterval))
    .option("--benign-proportion <β>", "share of every batch (and of the loss) given to ordinary prompts answered by the base model, 0 ≤ β < 1", parseNumber, d.benignProportion)
    .option("--kl-regularizer <α>", "add α·KL(base ‖ current) on the benign rows (benign rows are drawn even with β = 0)", parseNumber, d.klRegularizer)
    .option("--kl-top-k <k>", "base-model tokens kept per benign position for the KL term", parseInteger, d.klTopK)
    .option("--eval-samples <n>", "held-out samples the base model writes before training, to measure harm (0 = skip)", parseInteger, d.evalSamples)
    .option("--eval-tokens <n>", "tokens per held-out sample", parseInteger, d.evalTokens)
    .option("--eval-text <file>", "also measure harm on this text (plain text, or JSONL {text})")
    .option("--use-augmentation-prompts", "wrap keys in random system-prompt templates while training")
    .option("--keep-eos-in-response", "append EOS to every response (OML 1.0's behaviour)")
    .option("--use-chat-template", "key as the user turn, response as the assistant turn")
    .option("--seed <n>", "random seed", parseInteger, d.seed)
    .option("--results-dir <dir>", "where runs are written", d.resultsDir)
    .addOption(new Option("--backend <name>", "tfjs backend").choices([...BACKEND_NAMES]).default(d.backend))
    .option(
      "--workers <n|auto>",
      "worker threads computing gradients beside the main thread, each on a share of every batch (wasm/cpu; not with --benign-proportion/--kl-regularizer); auto = cores − 1 when parameters × tokens per micro-batch ≥ 2e9, else 0",
      parseWorkers,
      d.workers,
    )
    .option("--early-stop-loss <x>", "stop when the training loss falls below this", parseNumber, d.earlyStopLoss)
    .option("--stop-at-success <pct>", "stop when this % of fingerprints answer correctly (greedy)", parseNumber, d.stopAtSuccess)
    .option("--train-past-success", "keep training after every fingerprint answers, until --early-stop-loss or the last epoch (deeper fingerprints)")
    .option("--resume", "continue an interrupted run from its last epoch checkpoint")
    .option("--force", "redo a run whose result already exists")
    .option("--dry-run", "print the memory plan (parameters, bytes per part, the backend chosen, whether it fits) and exit: reads config.json only, loads no weights, writes nothing")
    .option("--json", "with --dry-run: print the plan as one JSON object")
    .option("--log-file <file>", "also write JSON log lines to this file")
    .option("-q, --quiet", "only warnings and errors on stderr")
    .option("--debug", "print stacks with errors")
    .action(runFinetuneCommand);
}

export async function main(argv: string[]): Promise<void> {
  await runMain(buildProgram(), argv, { aliases: ALIASES });
}
