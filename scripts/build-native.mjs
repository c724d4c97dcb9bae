// Builds packages/core/native/*.c (our AVX2 + FMA kernels, a Node-API addon; addon.c says what)
// into packages/core/dist/native/oml-native.node with the machine's C compiler and Node's own
// headers, no node-gyp (it would want Python and a download of the headers we already have).
// Optional: without a compiler, on another CPU or OS, or with OML_NATIVE_BUILD=0, it says so in
// one line and exits 0; the WebAssembly kernels then do the same work (same results, about
// half the GEMM speed). Skips the compile when the addon is newer than its source, and removes an addon it
// could not rebuild.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const sourceDir = path.join(root, "packages/core/native");
const files = readdirSync(sourceDir).sort().map((f) => path.join(sourceDir, f));
const sources = files.filter((f) => f.endsWith(".c"));
const inputs = [...files, fileURLToPath(import.meta.url)]; // any newer than the addon: rebuild
const outDir = path.join(root, "packages/core/dist/native");
const out = path.join(outDir, "oml-native.node");
const say = (msg) => console.log(`oml-native: ${msg}`);
const skip = (why) => {
  rmSync(out, { force: true }); // an addon older than its source must not load
  say(`not built (${why}); the WebAssembly kernels serve, with the same results`);
  process.exit(0);
};

if (process.env.OML_NATIVE_BUILD === "0") {
  skip("OML_NATIVE_BUILD=0");
}
if (process.arch !== "x64" || (process.platform !== "linux" && process.platform !== "darwin")) {
  skip(`its kernel is for x86-64 Linux and macOS, this is ${process.platform}-${process.arch}`);
}
if (existsSync(out) && inputs.every((f) => statSync(f).mtimeMs < statSync(out).mtimeMs)) {
  process.exit(0); // up to date
}
const cc = process.env.CC || "cc";
if (spawnSync(cc, ["--version"], { stdio: "ignore" }).status !== 0) {
  skip(`no C compiler: \`${cc} --version\` failed; install gcc or clang, or set CC`);
}
// Node's headers (node_api.h) ship with Node itself: <prefix>/include/node.
const include = [path.resolve(process.execPath, "../../include/node"), "/usr/include/node", "/usr/local/include/node"].find((d) => existsSync(path.join(d, "node_api.h")));
if (!include) {
  skip(`Node's headers (node_api.h) not found beside ${process.execPath}`);
}
mkdirSync(outDir, { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
const link = process.platform === "darwin" ? ["-bundle", "-undefined", "dynamic_lookup"] : ["-shared"];
// -ffp-contract=off: GNU C would fuse our separate multiplies and adds into FMAs, and the
// kernels must round exactly as the wasm ones do (every bit is compared in the tests).
const args = ["-O3", "-ffp-contract=off", "-std=gnu11", "-fPIC", "-fvisibility=hidden", "-Wall", `-I${include}`, ...link, ...sources, "-o", tmp];
const r = spawnSync(cc, args, { encoding: "utf8" });
if (r.status !== 0) {
  rmSync(tmp, { force: true });
  const first = `${r.stderr ?? ""}${r.error?.message ?? ""}`.split("\n").find((l) => /error/i.test(l)) ?? "see `" + [cc, ...args].join(" ") + "`";
  skip(`${cc} failed: ${first.trim()}`);
}
renameSync(tmp, out); // never a half-written addon where the loader looks
say(`built ${path.relative(root, out)} (${cc}: AVX2 + FMA kernels)`);
