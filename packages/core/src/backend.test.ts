import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, expect, test } from "vitest";
import { hasNativeAddon } from "./backend.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "oml-backend-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test("hasNativeAddon: only a package whose lib/napi-v<N>/ holds tfjs_binding.node (where tfjs-node's install script puts it)", () => {
  const pkg = (name: string): string => {
    const dir = path.join(tmp, name);
    mkdirSync(dir, { recursive: true });
    return dir;
  };
  expect(hasNativeAddon(path.join(tmp, "absent"))).toBe(false);
  expect(hasNativeAddon(pkg("no-lib"))).toBe(false);
  const failed = pkg("failed-install");
  mkdirSync(path.join(failed, "lib", "napi-v8"), { recursive: true }); // the download failed: no addon
  expect(hasNativeAddon(failed)).toBe(false);
  const ok = pkg("installed");
  mkdirSync(path.join(ok, "lib", "napi-v8"), { recursive: true });
  writeFileSync(path.join(ok, "lib", "napi-v8", "tfjs_binding.node"), "");
  expect(hasNativeAddon(ok)).toBe(true);
});
