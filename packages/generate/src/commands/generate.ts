/** Glue between the parsed flags and core's generateFingerprints. */
import { InputError, KEY_RESPONSE_STRATEGIES, generateFingerprints, type BackendName, type EngineName, type GenerateStrategy } from "@oml-ts/core";
import { createLogger, createProgress } from "@oml-ts/core/cli";

export interface GenerateFlags {
  strategy?: GenerateStrategy;
  keyResponseStrategy?: keyof typeof KEY_RESPONSE_STRATEGIES;
  randomWordGeneration?: boolean;
  keyLength: number;
  responseLength?: number;
  numFingerprints: number;
  batchSize: number;
  keysFile?: string;
  outputFile: string;
  wordListFile?: string;
  seed: number;
  modelUsedForKeyGeneration: string;
  temperature: number;
  firstTokenStrategy: "word" | "tokenizer" | "";
  nucleusT: number;
  nucleusK: number;
  perinucleusModel?: string;
  numResponsesPerFingerprint: number;
  useChatTemplate?: boolean;
  instruct?: boolean;
  engine: EngineName;
  backend: BackendName;
  force?: boolean;
  logFile?: string;
  quiet?: boolean;
}

/** --strategy, --random-word-generation and --key-response-strategy must agree. */
export function resolveStrategy(f: Pick<GenerateFlags, "strategy" | "keyResponseStrategy" | "randomWordGeneration">): GenerateStrategy {
  const said: [string, GenerateStrategy][] = [];
  if (f.strategy) {
    said.push([`--strategy ${f.strategy}`, f.strategy]);
  }
  if (f.randomWordGeneration) {
    said.push(["--random-word-generation", "random_word"]);
  }
  if (f.keyResponseStrategy) {
    // With --random-word-generation the reference ignores the (defaulted) key-response strategy.
    if (!f.randomWordGeneration) {
      said.push([`--key-response-strategy ${f.keyResponseStrategy}`, KEY_RESPONSE_STRATEGIES[f.keyResponseStrategy]]);
    }
  }
  const distinct = new Set(said.map(([, s]) => s));
  if (distinct.size > 1) {
    throw new InputError(`conflicting strategies: ${said.map(([flag]) => flag).join(" vs ")}`, { hint: "pass only --strategy" });
  }
  return said[0]?.[1] ?? "english";
}

export async function runGenerate(flags: GenerateFlags): Promise<void> {
  const log = createLogger({ quiet: flags.quiet, file: flags.logFile });
  const progress = createProgress({ label: "generate", log, quiet: flags.quiet });
  const strategy = resolveStrategy(flags);
  try {
    const result = await generateFingerprints(
      {
        strategy,
        keyLength: flags.keyLength,
        responseLength: flags.responseLength,
        numFingerprints: flags.numFingerprints,
        batchSize: flags.batchSize,
        seed: flags.seed,
        temperature: flags.temperature,
        firstTokenStrategy: flags.firstTokenStrategy,
        nucleusT: flags.nucleusT,
        nucleusK: flags.nucleusK,
        modelUsedForKeyGeneration: flags.modelUsedForKeyGeneration,
        perinucleusModel: flags.perinucleusModel,
        numResponsesPerFingerprint: flags.numResponsesPerFingerprint,
        useChatTemplate: Boolean(flags.useChatTemplate),
        instruct: flags.instruct,
        engine: flags.engine,
        backend: flags.backend,
        keysFile: flags.keysFile,
        wordListFile: flags.wordListFile,
        outputFile: flags.outputFile,
        force: Boolean(flags.force),
      },
      { log, onProgress: (e) => progress.update(e.done, e.total, { phase: e.phase }) },
    );
    progress.stop();
    process.stdout.write(`${result.outputFile}\n`);
  } finally {
    progress.stop();
  }
}
