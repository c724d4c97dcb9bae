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

/** `--workers`: "auto" or a whole number ≥ 0. */
export function parseWorkers(value: string): number | "auto" {
  if (value === "auto") {
    return "auto";
  }
  const n = parseInteger(value);
  if (n < 0) {
    throw new InvalidArgumentError('a whole number ≥ 0, or "auto".');
  }
  return n;
}
