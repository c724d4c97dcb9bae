// Timings of the training primitives per tfjs backend (cpu, wasm). Not a test.
//
//   npx tsc -b packages/core && node bench/engine-primitives.mjs [--reps 5] [--backends cpu,wasm]
//
// Prints one markdown table: median milliseconds over --reps runs after one warm-up run.
// cpu and wasm run kernels synchronously, so results are not read back (a readout of a
// 32000-wide tensor from the wasm heap would cost more than some of the primitives).
// "stock" rows are what the primitive replaces (tfjs's own formulation); the cpu backend's
// stock softmax and segment sum at a 32k vocabulary are skipped (seconds to minutes).
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";

const core = new URL("../packages/core/", import.meta.url);
const require = createRequire(new URL("package.json", core));
const tf = await import(pathToFileURL(require.resolve("@tensorflow/tfjs-core")).href);
const dist = (p) => import(new URL(`dist/${p}`, core).href);
const { initBackend } = await dist("backend.js");
const { linear } = await dist("model/linear.js");
const { maskedCrossEntropy } = await dist("train/loss.js");
const { AdamW } = await dist("train/adamw.js");
const { clipByGlobalNorm } = await dist("train/grad-utils.js");
const { averageInto, snapshotWeights } = await dist("train/averaging.js");

const { values: args } = parseArgs({ options: { reps: { type: "string", default: "5" }, backends: { type: "string", default: "cpu,wasm" } } });
const reps = Number(args.reps);
const backends = args.backends.split(",");

/** Median ms of fn() over reps runs, after one warm-up; what fn returns is freed untimed. */
function time(fn, n = reps) {
  const run = () => {
    const t0 = performance.now();
    const out = tf.tidy(fn);
    const ms = performance.now() - t0;
    tf.dispose(out);
    return ms;
  };
  run();
  const ms = Array.from({ length: n }, run).sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)];
}

const plainLinear = (x, w) => tf.matMul(x, w, false, true);
const fwdBwd = (f, x, w, r) => () => tf.grads((a, b) => tf.sum(tf.mul(f(a, b), r)))([x, w]);

/** Each case: [label, (backend) => ms | undefined]; setup and teardown inside. */
const cases = [];
for (const [N, I, O] of [[512, 256, 704], [512, 64, 512]]) {
  const shapes = `N=${N} in=${I} out=${O}`;
  const withInputs = (f) => () => {
    const x = tf.randomNormal([N, I], 0, 1, "float32", 1);
    const w = tf.randomNormal([O, I], 0, 1, "float32", 2);
    const r = tf.randomNormal([N, O], 0, 1, "float32", 3);
    const ms = time(fwdBwd(f, x, w, r));
    tf.dispose([x, w, r]);
    return ms;
  };
  cases.push([`linear fwd+bwd ${shapes}, stock (transpose flags)`, withInputs(plainLinear)]);
  cases.push([`linear fwd+bwd ${shapes}, linear()`, withInputs(linear)]);
}

const [B, T, V, C] = [4, 128, 32000, 256];
const lossCase = (plain) => (backend) => {
  if (plain && backend === "cpu") {
    return undefined;
  }
  const logits = tf.randomNormal([B, T, V], 0, 1, "float32", 4);
  const ids = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (b * 7919 + t * 104729) % V));
  const labels = tf.tensor2d(ids, [B, T], "int32");
  const stock = (l) => {
    const onehot = tf.cast(tf.oneHot(tf.slice(labels, [0, 1], [B, T - 1]), V), "float32");
    const lp = tf.logSoftmax(tf.slice(l, [0, 0, 0], [B, T - 1, V]));
    return tf.neg(tf.mean(tf.sum(tf.mul(lp, onehot), -1)));
  };
  const ms = time(() => tf.grad((l) => (plain ? stock(l) : maskedCrossEntropy(l, labels)))(logits), plain ? 1 : reps);
  tf.dispose([logits, labels]);
  return ms;
};
cases.push([`cross-entropy fwd+bwd B=${B} T=${T} V=${V}, stock (logSoftmax·oneHot)`, lossCase(true)]);
cases.push([`cross-entropy fwd+bwd B=${B} T=${T} V=${V}, maskedCrossEntropy`, lossCase(false)]);

cases.push([`softmax (${B * T}, ${V})`, () => {
  const x = tf.randomNormal([B * T, V], 0, 1, "float32", 5);
  const ms = time(() => tf.softmax(x));
  x.dispose();
  return ms;
}]);

const embedding = (kernelOnly) => () => {
  const table = tf.zeros([V, C]);
  const ids = tf.tensor2d(Array.from({ length: B * T }, (_, i) => (i * 7919) % V), [B, T], "int32");
  const dy = tf.randomNormal([B, T, C], 0, 1, "float32", 6);
  const ms = kernelOnly
    ? time(() => tf.unsortedSegmentSum(tf.reshape(dy, [B * T, C]), tf.reshape(ids, [B * T]), V))
    : time(() => tf.grad((t) => tf.sum(tf.mul(tf.gather(t, ids), dy)))(table));
  tf.dispose([table, ids, dy]);
  return ms;
};
cases.push([`UnsortedSegmentSum (${B * T}, ${C}) → (${V}, ${C})`, embedding(true)]);
cases.push([`embedding gather fwd+bwd ids (${B}, ${T}) from (${V}, ${C})`, embedding(false)]);

const P = [2048, 2048]; // 4.2M parameters
const paramCase = (fn) => () => {
  const w = tf.tidy(() => tf.variable(tf.randomNormal(P, 0, 0.02, "float32", 7)));
  const g = tf.randomNormal(P, 0, 1, "float32", 8);
  const ms = fn(w, g);
  tf.dispose([w, g]);
  return ms;
};
cases.push([`AdamW step, ${(P[0] * P[1] / 1e6).toFixed(1)}M params`, paramCase((w, g) => {
  const opt = new AdamW();
  return time(() => opt.step(new Map([["w", w]]), new Map([["w", g]]), 1e-3));
})]);
cases.push([`clipByGlobalNorm (clipping), ${(P[0] * P[1] / 1e6).toFixed(1)}M params`, paramCase((_w, g) =>
  time(() => [...clipByGlobalNorm(new Map([["w", g]]), 1e-3).grads.values()]))]);
cases.push([`averageInto λ=0.5, ${(P[0] * P[1] / 1e6).toFixed(1)}M params`, paramCase((w) => {
  const anchor = snapshotWeights(new Map([["w", w]]));
  return time(() => averageInto(new Map([["w", w]]), anchor, 0.5));
})]);

const results = new Map(cases.map(([label]) => [label, {}]));
for (const backend of backends) {
  await initBackend(backend);
  for (const [label, run] of cases) {
    const before = tf.memory().numTensors;
    const ms = run(backend);
    if (tf.memory().numTensors !== before) {
      throw new Error(`${label} on ${backend} leaked ${tf.memory().numTensors - before} tensors`);
    }
    results.get(label)[backend] = ms;
    process.stderr.write(`${backend}: ${label}: ${ms === undefined ? "skipped" : ms.toFixed(1)}\n`);
  }
}

const fmt = (ms) => (ms === undefined ? "—" : ms.toFixed(1));
console.log(`| primitive (median ms of ${reps}) | ${backends.join(" | ")} |`);
console.log(`|---|${backends.map(() => "---:").join("|")}|`);
for (const [label, r] of results) {
  console.log(`| ${label} | ${backends.map((b) => fmt(r[b])).join(" | ")} |`);
}
