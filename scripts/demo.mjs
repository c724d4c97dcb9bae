#!/usr/bin/env node
// The README's first command runs this after installing: the main job on an embedded default.
// For now: generate 256 random-word fingerprints into generated_data/demo_fingerprints.json.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const bin = (name) => path.join(root, `packages/${name}/bin/oml-${name}.js`);
const out = path.join(root, "generated_data/demo_fingerprints.json");
const r = spawnSync(
  process.execPath,
  [bin("generate"), "--strategy", "random_word", "--num-fingerprints", "256", "--key-length", "16", "--response-length", "1", "--output-file", out, "--force"],
  { stdio: "inherit" },
);
process.exitCode = r.status ?? 1;
