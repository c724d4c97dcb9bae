/**
 * `oml-generate`: declarations only; the work is in commands/generate.ts and @oml-ts/core.
 * Flags are the reference's (generate_finetuning_data.py) in kebab-case; snake_case and the
 * reference's alternative names are accepted too.
 */
import { Command, Option } from "commander";
import { BACKEND_NAMES, DEFAULT_RESPONSE_LENGTH, GENERATE_STRATEGIES, GenerateOptionsSchema, KEY_RESPONSE_STRATEGIES } from "@oml-ts/core";
import { parseInteger, parseNumber, runMain } from "@oml-ts/core/cli";
import { runGenerate } from "./commands/generate.js";
import { version } from "./version.js";

const ALIASES = {
  "--nucleus-p": "--nucleus-t",
  "--inverse-nucleus-model": "--perinucleus-model",
};

export function buildProgram(): Command {
  const d = GenerateOptionsSchema.parse({});
  return new Command("oml-generate")
    .description(
      "Generate fingerprints (secret key → response pairs) for fine-tuning into a model.\n" +
        "snake_case spellings of every flag (--key_length …) are accepted, as are --nucleus-p and --inverse-nucleus-model.",
    )
    .version(version)
    .addOption(new Option("--strategy <name>", "how keys and responses are made").choices([...GENERATE_STRATEGIES]))
    .addOption(
      new Option("--key-response-strategy <name>", "the reference's switch: independent = english, inverse_nucleus = perinucleus").choices(
        Object.keys(KEY_RESPONSE_STRATEGIES),
      ),
    )
    .option("--random-word-generation", "same as --strategy random_word")
    .option("--key-length <n>", "words (random_word) or new tokens (english) per key; perinucleus keeps this many tokens of each key (= oml-finetune's --max-key-length)", parseInteger, d.keyLength)
    .option(
      "--response-length <n>",
      `words or tokens per response (default: ${DEFAULT_RESPONSE_LENGTH.english}; perinucleus: ${DEFAULT_RESPONSE_LENGTH.perinucleus}, more continues greedily)`,
      parseInteger,
    )
    .option("--num-fingerprints <n>", "how many fingerprints", parseInteger, d.numFingerprints)
    .option("--batch-size <n>", "prompts per generation batch (model strategies)", parseInteger, d.batchSize)
    .option("--keys-file <file>", "keys to use, only responses are generated: a JSON array of strings, or a fingerprints file (its keys)")
    .option("--output-file <file>", "where to write the fingerprints", d.outputFile)
    .option("--word-list-file <file>", "word list, one word per line (default: generated_data/word_list.txt)")
    .option("--seed <n>", "random seed: same seed, same file", parseInteger, d.seed)
    .option("--model-used-for-key-generation <model>", "local HF directory or hub id of the generation model (a local ONNX model directory with --engine onnx)", d.modelUsedForKeyGeneration)
    .option("--temperature <t>", "sampling temperature of english keys and responses", parseNumber, d.temperature)
    .addOption(new Option("--first-token-strategy <s>", 'first word of each key: word, tokenizer or "" (none)').choices(["word", "tokenizer", ""]).default(d.firstTokenStrategy))
    .option("--nucleus-t <t>", "perinucleus: cumulative-probability threshold t in (0,1)", parseNumber, d.nucleusT)
    .option("--nucleus-k <k>", "perinucleus: draw among the first k tokens past the nucleus", parseInteger, d.nucleusK)
    .option("--perinucleus-model <model>", "model whose next-token distribution picks responses (default: the generation model)")
    .option(
      "--num-responses-per-fingerprint <n>",
      "perinucleus: responses per key, each with a distinct first token (> 1 writes arrays)",
      parseInteger,
      d.numResponsesPerFingerprint,
    )
    .option("--use-chat-template", "prompt instruct models through their chat template")
    .option("--instruct", 'english: the generation model is instruction-tuned (default: its name contains "instruct")')
    .option("--no-instruct", "english: the generation model is a base model, whatever its name")
    .addOption(new Option("--engine <name>", "who runs the generation model: tfjs (ours, safetensors) or onnx (an ONNX model directory)").choices(["tfjs", "onnx"]).default(d.engine))
    .addOption(new Option("--backend <name>", "tfjs backend (engine tfjs)").choices([...BACKEND_NAMES]).default(d.backend))
    .option("--force", "overwrite the output file if it exists")
    .option("--log-file <file>", "also write JSON log lines to this file")
    .option("-q, --quiet", "only warnings and errors on stderr")
    .option("--debug", "print stacks with errors")
    .action(runGenerate);
}

export async function main(argv: string[]): Promise<void> {
  await runMain(buildProgram(), argv, { aliases: ALIASES });
}
