/**
 * Accept the reference's snake_case flags (`--key_length 16`, `--nucleus_t=0.9`) and other
 * aliases by rewriting argv to our kebab-case names before commander parses it.
 */

/** `--key_length` → `--key-length`; aliases map whole flag names (`--nucleus-p` → `--nucleus-t`). */
export function normalizeArgv(argv: readonly string[], aliases: Readonly<Record<string, string>> = {}): string[] {
  const out: string[] = [];
  let afterDoubleDash = false;
  for (const arg of argv) {
    if (afterDoubleDash || !arg.startsWith("--") || arg === "--") {
      afterDoubleDash ||= arg === "--";
      out.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg : arg.slice(0, eq);
    const rest = eq < 0 ? "" : arg.slice(eq);
    const kebab = name.replace(/_/g, "-");
    out.push((aliases[kebab] ?? kebab) + rest);
  }
  return out;
}

/** camelCase option name → the flag users typed: `keyLength` → `--key-length`. */
export function flagName(option: string): string {
  return `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}
