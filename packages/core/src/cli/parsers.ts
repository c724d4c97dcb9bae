/** commander argument parsers: reject non-numbers at parse time (exit 2 through runMain). */
import { InvalidArgumentError } from "commander";

export function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) {
    throw new InvalidArgumentError("not a number.");
  }
  return n;
}

export function parseInteger(value: string): number {
  const n = parseNumber(value);
  if (!Number.isInteger(n)) {
    throw new InvalidArgumentError("not a whole number.");
  }
  return n;
}

/**
 * `--workers <n|auto>`: digits become a number; anything else goes on as typed, for core to
 * accept ("auto") or reject naming the flag (one check, in core, for every caller).
 */
export function parseWorkers(value: string): number | string {
  return /^\s*\d+\s*$/.test(value) ? Number(value) : value;
}
