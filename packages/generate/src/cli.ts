import { Command } from "commander";

export async function main(argv: string[]): Promise<void> {
  const program = new Command("oml-generate").description("(coming soon)");
  await program.parseAsync(argv);
}
