import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, expect, test } from "vitest";
import { pickBundle } from "./pick-bundle.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "oml-bin-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test("pickBundle: the bundle only when it exists and no build it came from is newer", () => {
  const file = (name: string, secondsAgo: number): string => {
    const p = path.join(tmp, name);
    writeFileSync(p, "");
    const t = Date.now() / 1000 - secondsAgo;
    utimesSync(p, t, t);
    return p;
  };
  const plain = file("cli.js", 100);
  const coreBuild = file("core.tsbuildinfo", 100);
  expect(pickBundle(path.join(tmp, "missing.js"), plain, [coreBuild])).toBe(plain);
  const bundle = file("bundle.js", 50); // made after both builds
  expect(pickBundle(bundle, plain, [coreBuild, path.join(tmp, "no-such.tsbuildinfo")])).toBe(bundle);
  const rebuiltCore = file("core-later.tsbuildinfo", 10); // tsc ran again after bundling
  expect(pickBundle(bundle, plain, [coreBuild, rebuiltCore])).toBe(plain);
  const rebuiltCli = file("cli-later.js", 10);
  expect(pickBundle(bundle, rebuiltCli, [coreBuild])).toBe(rebuiltCli);
});
