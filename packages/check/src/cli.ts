/**
 * `oml-check`: declarations only; the work is in commands/check.ts and @oml-ts/core.
 * Flags are the reference's (check_fingerprints.py) in kebab-case; snake_case is accepted too.
 */
import { Command, Option } from "commander";
import { BACKEND_NAMES, FINGERPRINT_STRATEGIES } from "@oml-ts/core";
import { parseInteger, parseNumber, parseWorkers, runMain } from "@oml-ts/core/cli";
import { runCheckCommand } from "./commands/check.js";
import { version } from "./version.js";

export function buildProgram(): Command {
  return new Command("oml-check")
    .description(
      "Measure how many fingerprints a model answers, and (--verify) whether a suspect model is yours.\n" +
        "Pointed at results/<hash>/final_model it reads the run's config and fingerprints and needs nothing else;\n" +
        "explicit flags still win. snake_case spellings (--num_fingerprints …) are accepted.",
    )
    .version(version)
    .requiredOption("--model-path <dir>", "the model to check (a local Hugging Face directory)")
    .option("--fingerprints-file-path <file>", "fingerprints JSON (default: the run's fingerprints.json)")
    .option("--num-fingerprints <n>", "how many fingerprints to check (default 128, or the run's)", parseInteger)
    .option("--max-key-length <n>", "key tokens kept (default 16, or the run's)", parseInteger)
    .option("--max-response-length <n>", "response tokens (default 1, or the run's)", parseInteger)
    .addOption(new Option("--fingerprint-generation-strategy <s>", "how the responses were made (default english, or the run's)").choices([...FINGERPRINT_STRATEGIES, "english_random_responses"]))
    .option("--keep-eos-in-response", "responses end in EOS (default: as the run trained)")
    .option("--use-chat-template", "prompt through the chat template (default: as the run trained)")
    .option("--use-augmentation-prompts", "check under the held-out system-prompt templates (augmentation_prompts_test.json)")
    .option("--sampling-temperature <t>", "0 = greedy", parseNumber, 0)
    .option("--seed <n>", "random seed (sampling, --verify key draw)", parseInteger, 42)
    .option("--batch-size <n>", "prompts per batch (default: 256, 128 or 64, the largest whose activations plan within 512 MiB)", parseInteger)
    .option("--workers <n|auto>", "generation threads besides the main one (auto: 1 on a multi-core machine, wasm or cpu backend, when parameters × prompts ≥ 1e9, ≥ 3 batches and weights ≤ 1 GiB)", parseWorkers, "auto")
    .addOption(new Option("--backend <name>", "tfjs backend").choices([...BACKEND_NAMES]).default("auto"))
    .option("--verbose-eval", "for each failure print key, expected, generated and the top-10 next tokens")
    .option("--min-success <pct>", "exit 1 when the headline success rate is below this", parseNumber, 0)
    .option("--verify", "ownership test: query --num-queries keys and report the false-positive probability")
    .option("--num-queries <n>", "keys queried by --verify", parseInteger, 10)
    .option("--null-rate <q>", "--verify: chance an unrelated model answers a key's response", parseNumber)
    .option("--nucleus-k <k>", "--verify: perinucleus k (q = 1/k)", parseInteger)
    .option("--base-model <dir>", "--verify: measure q on this model (95% upper bound)")
    .option("--alpha <a>", "--verify: claim ownership when p ≤ alpha", parseNumber, 1e-6)
    .option("--json", "print one JSON object on stdout instead of a table")
    .option("--log-file <file>", "also write JSON log lines to this file")
    .option("-q, --quiet", "only warnings and errors on stderr")
    .option("--debug", "print stacks with errors")
    .action(async (opts: Record<string, unknown>, cmd: Command) => {
      const explicit = new Set(Object.keys(opts).filter((k) => cmd.getOptionValueSource(k) === "cli"));
      await runCheckCommand(opts, explicit);
    });
}

export async function main(argv: string[]): Promise<void> {
  await runMain(buildProgram(), argv);
}
