/** WorkerChannel: answers matched by id; a thread that dies fails what waits and what comes. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, expect, test } from "vitest";
import { WorkerChannel } from "./worker-channel.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "oml-channel-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A worker script from its body (parentPort in scope). */
function script(name: string, body: string): URL {
  const file = path.join(dir, `${name}.mjs`);
  writeFileSync(file, `import { parentPort } from "node:worker_threads";\n${body}\n`);
  return pathToFileURL(file);
}

test("answers come back to their request, out of order too; { error } rejects that request only", async () => {
  const url = script("echo", `
    parentPort.postMessage({ ready: true });
    parentPort.on("message", (m) => {
      if (m.x < 0) { parentPort.postMessage({ id: m.id, error: "negative" }); return; }
      setTimeout(() => parentPort.postMessage({ id: m.id, y: m.x * 2 }), m.x === 1 ? 30 : 0);
    });`);
  const c = new WorkerChannel<{ x: number }, { y: number }>(url, null, "echo worker");
  try {
    await c.ready;
    const [a, b, bad] = await Promise.allSettled([c.request({ x: 1 }), c.request({ x: 2 }), c.request({ x: -1 })]);
    expect(a).toEqual({ status: "fulfilled", value: expect.objectContaining({ y: 2 }) as unknown });
    expect(b).toEqual({ status: "fulfilled", value: expect.objectContaining({ y: 4 }) as unknown });
    expect(bad.status).toBe("rejected");
    expect(String((bad as PromiseRejectedResult).reason)).toMatch(/echo worker failed: negative/);
  } finally {
    await c.terminate();
  }
});

test("a thread that dies before ready: ready resolves, and every request fails", async () => {
  const c = new WorkerChannel<{ x: number }, { y: number }>(script("dies", `throw new Error("boom");`), null, "doomed worker");
  await c.ready;
  await expect(c.request({ x: 1 })).rejects.toThrow(/doomed worker crashed: boom/);
});

test("a thread that exits while a request waits fails it", async () => {
  const url = script("quits", `parentPort.postMessage({ ready: true }); parentPort.on("message", () => process.exit(3));`);
  const c = new WorkerChannel<{ x: number }, { y: number }>(url, null, "quitting worker");
  await c.ready;
  await expect(c.request({ x: 1 })).rejects.toThrow(/quitting worker exited \(code 3\)/);
  await expect(c.request({ x: 2 })).rejects.toThrow(/quitting worker/);
});
