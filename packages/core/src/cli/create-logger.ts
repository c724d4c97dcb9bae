/**
 * The CLIs' logger: human-readable lines on stderr (pino-pretty, synchronous), and every
 * level as JSON lines to `--log-file`. stdout is left for results only.
 */
import { pino, multistream, destination, type StreamEntry, type Level } from "pino";
import pretty from "pino-pretty";
import type { Logger } from "../log.js";

export interface CreateLoggerOptions {
  /** Only warnings and errors on stderr. */
  quiet?: boolean;
  /** Debug lines on stderr. */
  verbose?: boolean;
  /** Also write JSON lines (all levels) to this file. */
  file?: string;
}

export function createLogger(opts: CreateLoggerOptions = {}): Logger & { flush(): void } {
  const stderrLevel: Level = opts.quiet ? "warn" : opts.verbose ? "debug" : "info";
  const streams: StreamEntry[] = [
    {
      level: stderrLevel,
      stream: pretty({
        destination: 2,
        sync: true,
        colorize: Boolean(process.stderr.isTTY) && !process.env.NO_COLOR,
        ignore: "pid,hostname",
        translateTime: "HH:MM:ss",
        singleLine: true,
      }),
    },
  ];
  if (opts.file) {
    streams.push({ level: "debug", stream: destination({ dest: opts.file, mkdir: true, sync: true }) });
  }
  return pino({ level: "debug", base: undefined }, multistream(streams)) as unknown as Logger & { flush(): void };
}
