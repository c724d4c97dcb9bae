import { Command } from "commander";

export async function main(argv: string[]): Promise<void> {
  const program = new Command("oml-finetune").description("(coming soon)");
  await program.parseAsync(argv);
}
