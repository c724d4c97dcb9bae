/**
 * The one place a CLI talks to the user about failures: runs a commander program, renders
 * typed errors as `error: …` + `hint: …` on stderr, and sets process.exitCode (never
 * process.exit, so logs and bars flush).
 *
 * Exit codes: 0 ok · 1 result below threshold · 2 usage or bad input · 3 runtime failure · 4 bug.
 */
import { CommanderError, type Command } from "commander";
import { ZodError } from "zod";
import { CoreError } from "../errors.js";
import { formatZodError } from "../util/zod-issues.js";
import { normalizeArgv } from "./normalize-argv.js";

/** Render any thrown value as the lines a user sees, and its exit code. */
export function formatError(err: unknown, opts: { debug?: boolean } = {}): { text: string; exitCode: number } {
  if (err instanceof CoreError) {
    const lines = [`error: ${err.message}`];
    if (err.hint) {
      lines.push(`hint: ${err.hint}`);
    }
    if (opts.debug || err.exitCode === 4) {
      lines.push(err.stack ?? "");
      if (err.cause) {
        lines.push(`cause: ${err.cause instanceof Error ? (err.cause.stack ?? err.cause.message) : String(err.cause)}`);
      }
    }
    if (err.exitCode === 4) {
      lines.push("This is a bug in oml-ts; please report it with the lines above.");
    }
    return { text: lines.join("\n"), exitCode: err.exitCode };
  }
  if (err instanceof ZodError) {
    return { text: `error: ${formatZodError(err)}`, exitCode: 2 };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return { text: `error: internal unexpected error: ${e.message}\n${e.stack ?? ""}\nThis is a bug in oml-ts; please report it with the lines above.`, exitCode: 4 };
}

export interface RunMainOptions {
  /** Extra flag aliases: `{ "--nucleus-p": "--nucleus-t" }`. snake_case is always accepted. */
  aliases?: Record<string, string>;
}

/**
 * Parse argv (full process.argv) and run the program. Commander's own usage errors exit 2;
 * --help and --version exit 0.
 */
export async function runMain(program: Command, argv: readonly string[], opts: RunMainOptions = {}): Promise<number> {
  program.exitOverride();
  program.showHelpAfterError("(run with --help for usage)");
  for (const sub of program.commands) {
    sub.exitOverride();
  }
  const args = [...argv.slice(0, 2), ...normalizeArgv(argv.slice(2), opts.aliases)];
  let code = 0;
  try {
    await program.parseAsync(args);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has printed its message already
      code = err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.exitCode === 0 ? 0 : 2;
    } else {
      const debug = process.argv.includes("--debug") || process.env.OML_DEBUG === "1";
      const { text, exitCode } = formatError(err, { debug });
      process.stderr.write(`${text}\n`);
      code = exitCode;
    }
  }
  if (code !== 0 || process.exitCode === undefined) {
    process.exitCode = code;
  }
  return code;
}
