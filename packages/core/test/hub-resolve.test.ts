/**
 * resolveModelDir against a fake Hub on 127.0.0.1: the routes @huggingface/hub's `modelInfo`
 * and `listFiles` call (`/api/models/{id}/revision/{rev}`, `/api/models/{id}/tree/{commit}`) and
 * the file route we download from (`/{id}/resolve/{commit}/{file}`, with ETag, X-Repo-Commit,
 * Content-Length and Range), answering errors with the Hub's `X-Error-Code` header.
 */
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ModelLoadError, RuntimeFailure } from "../src/errors.js";
import { readModelWeights } from "../src/io/model-files.js";
import { writeSafetensors } from "../src/io/safetensors.js";
import { HubModelError, resolveFirstAvailable, resolveModelDir, type DownloadProgress, type ResolveModelOptions } from "../src/hub/index.js";
import { gitOid, sha256, startFakeHub, type FakeHub, type FakeRepo, type Request } from "./support/fake-hub.js";

// ---------------------------------------------------------------- a tiny model

const SHA = "0123456789abcdef0123456789abcdef01234567";
const SHA2 = "89abcdef0123456789abcdef0123456789abcdef";
const CONFIG = Buffer.from(JSON.stringify({ model_type: "llama", hidden_size: 4, num_hidden_layers: 1 }));
const TOKENIZER = Buffer.from(JSON.stringify({ version: "1.0", model: { type: "BPE", vocab: {}, merges: [] } }));

let root: string;
let weights: Buffer;
let shard1: Buffer;
let shard2: Buffer;

async function safetensorsBytes(tensors: Record<string, { shape: number[]; data: Float32Array }>): Promise<Buffer> {
  const file = path.join(root, `w-${Math.random().toString(36).slice(2)}.safetensors`);
  await writeSafetensors(file, tensors);
  return readFile(file);
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "oml-hub-"));
  weights = await safetensorsBytes({
    "model.embed_tokens.weight": { shape: [8, 4], data: new Float32Array(32).map((_, i) => i / 8) },
    "lm_head.weight": { shape: [8, 4], data: new Float32Array(32).map((_, i) => -i) },
  });
  shard1 = await safetensorsBytes({ "model.embed_tokens.weight": { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } });
  shard2 = await safetensorsBytes({ "lm_head.weight": { shape: [2, 2], data: new Float32Array([5, 6, 7, 8]) } });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A repo with everything a Hub repo usually has; only some of it must be downloaded. */
function tinyRepo(extra: Partial<FakeRepo> = {}): FakeRepo {
  return {
    sha: SHA,
    files: {
      "config.json": CONFIG,
      "generation_config.json": Buffer.from('{"bos_token_id":1}'),
      "tokenizer.json": TOKENIZER,
      "tokenizer_config.json": Buffer.from('{"model_max_length":8}'),
      "special_tokens_map.json": Buffer.from('{"bos_token":"<s>"}'),
      "model.safetensors": weights,
      "pytorch_model.bin": Buffer.from("pickle"),
      "flax_model.msgpack": Buffer.from("msgpack"),
      "model.gguf": Buffer.from("GGUF"),
      "README.md": Buffer.from("# tiny"),
      ".gitattributes": Buffer.from("*.safetensors filter=lfs"),
    },
    lfs: ["model.safetensors", "pytorch_model.bin", "flax_model.msgpack", "model.gguf"],
    dirs: ["onnx"],
    ...extra,
  };
}

function shardedRepo(): FakeRepo {
  const index = { metadata: { total_size: 32 }, weight_map: { "model.embed_tokens.weight": "model-00001-of-00002.safetensors", "lm_head.weight": "model-00002-of-00002.safetensors" } };
  return {
    sha: SHA2,
    files: {
      "config.json": CONFIG,
      "tokenizer.json": TOKENIZER,
      "model.safetensors.index.json": Buffer.from(JSON.stringify(index)),
      "model-00001-of-00002.safetensors": shard1,
      "model-00002-of-00002.safetensors": shard2,
      "consolidated.safetensors": Buffer.concat([shard1, shard2]),
    },
    lfs: ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "consolidated.safetensors"],
  };
}

// ---------------------------------------------------------------- per-test cache and env

const ENV_KEYS = ["HF_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME"] as const;
let savedEnv: Record<string, string | undefined>;
let cache: string;
let hub: FakeHub | undefined;

beforeEach(async () => {
  savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  for (const k of ENV_KEYS) {
    delete process.env[k];
  }
  cache = await mkdtemp(path.join(root, "cache-"));
});
afterEach(async () => {
  for (const k of ENV_KEYS) {
    if (savedEnv[k] === undefined) {
      delete process.env[k];
    } else {
      process.env[k] = savedEnv[k];
    }
  }
  await hub?.close();
  hub = undefined;
});

const opts = (extra: ResolveModelOptions = {}): ResolveModelOptions => ({ hubUrl: hub?.url, cacheDir: cache, retryDelayMs: 0, ...extra });
const fileRequests = (h: FakeHub): Request[] => h.requests.filter((r) => r.url.includes("/resolve/"));
const blobDir = (repo: string): string => path.join(cache, `models--${repo.replace("/", "--")}`);

async function expectError(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error;
}

// ---------------------------------------------------------------- tests

describe("resolveModelDir from the Hub", () => {
  it("downloads only the needed files into the Hugging Face cache layout", async () => {
    hub = await startFakeHub({ "tiny-org/tiny-llama": tinyRepo() });
    const events: DownloadProgress[] = [];
    const dir = await resolveModelDir("tiny-org/tiny-llama", opts({ onProgress: (e) => events.push(e) }));

    const repoDir = blobDir("tiny-org/tiny-llama");
    expect(dir).toBe(path.join(repoDir, "snapshots", SHA));
    expect(path.isAbsolute(dir)).toBe(true);
    expect((await readFile(path.join(repoDir, "refs", "main"), "utf8")).trim()).toBe(SHA);
    const wanted = ["config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"];
    expect((await readdir(dir)).sort()).toEqual(wanted);

    // Relative symlinks into blobs/, named by sha256 (LFS) or the git blob sha1, as huggingface_hub.
    expect((await lstat(path.join(dir, "model.safetensors"))).isSymbolicLink()).toBe(true);
    expect(await readlink(path.join(dir, "model.safetensors"))).toBe(path.join("..", "..", "blobs", sha256(weights)));
    expect(await readlink(path.join(dir, "config.json"))).toBe(path.join("..", "..", "blobs", gitOid(CONFIG)));
    expect(await readFile(path.join(dir, "config.json"))).toEqual(CONFIG);
    expect(await readFile(path.join(dir, "model.safetensors"))).toEqual(weights);
    expect((await readdir(path.join(repoDir, "blobs"))).length).toBe(wanted.length);

    // Never a .bin / .msgpack / .gguf / onnx request.
    const fetched = fileRequests(hub).map((r) => path.basename(r.url)).sort();
    expect(fetched).toEqual(wanted);
    expect(hub.requests.every((r) => r.authorization === undefined)).toBe(true);

    // One final event per file with loaded === total.
    const last = new Map(events.map((e) => [e.file, e]));
    expect([...last.keys()].sort()).toEqual(wanted);
    expect(last.get("model.safetensors")).toEqual({ file: "model.safetensors", loaded: weights.length, total: weights.length });

    const w = await readModelWeights(dir);
    expect([...(w.get("lm_head.weight")?.data ?? [])].slice(0, 3)).toEqual([-0, -1, -2]);
  });

  it("downloads the shards named by the index, not a stray consolidated.safetensors", async () => {
    hub = await startFakeHub({ "tiny-org/sharded": shardedRepo() });
    const dir = await resolveModelDir("tiny-org/sharded", opts());
    expect((await readdir(dir)).sort()).toEqual([
      "config.json",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
      "model.safetensors.index.json",
      "tokenizer.json",
    ]);
    const w = await readModelWeights(dir);
    expect([...(w.get("lm_head.weight")?.data ?? [])]).toEqual([5, 6, 7, 8]);
  });

  it("a second call downloads nothing, and uses the cache when the server is gone", async () => {
    hub = await startFakeHub({ "tiny-org/tiny-llama": tinyRepo() });
    const dir = await resolveModelDir("tiny-org/tiny-llama", opts());
    const before = fileRequests(hub).length;
    expect(await resolveModelDir("tiny-org/tiny-llama", opts())).toBe(dir);
    expect(fileRequests(hub).length).toBe(before);

    const url = hub.url;
    await hub.close();
    hub = undefined;
    expect(await resolveModelDir("tiny-org/tiny-llama", opts({ hubUrl: url }))).toBe(dir);
  });

  it("configOnly (a memory plan) downloads config.json alone; a full resolve later adds the rest", async () => {
    hub = await startFakeHub({ "tiny-org/tiny-llama": tinyRepo() });
    const dir = await resolveModelDir("tiny-org/tiny-llama", opts({ configOnly: true }));
    expect(dir).toBe(path.join(blobDir("tiny-org/tiny-llama"), "snapshots", SHA));
    expect(await readdir(dir)).toEqual(["config.json"]);
    expect(fileRequests(hub).map((r) => path.basename(r.url))).toEqual(["config.json"]);

    // Offline, a snapshot with config.json does for a plan, not for a run.
    process.env["HF_HUB_OFFLINE"] = "1";
    expect(await resolveModelDir("tiny-org/tiny-llama", opts({ configOnly: true }))).toBe(dir);
    const err = await expectError(resolveModelDir("tiny-org/tiny-llama", opts()));
    expect((err as HubModelError).reason).toBe("not-cached");
    delete process.env["HF_HUB_OFFLINE"];

    expect(await resolveModelDir("tiny-org/tiny-llama", opts())).toBe(dir);
    expect(fileRequests(hub).filter((r) => r.url.endsWith("/config.json")).length).toBe(1);
    expect((await readdir(dir)).sort()).toContain("model.safetensors");
  });

  it("configOnly still refuses a repo without usable weights", async () => {
    const repo = tinyRepo();
    delete repo.files["model.safetensors"];
    hub = await startFakeHub({ "tiny-org/bin-only": repo });
    const err = await expectError(resolveModelDir("tiny-org/bin-only", opts({ configOnly: true })));
    expect((err as HubModelError).reason).toBe("no-safetensors");
    expect(fileRequests(hub)).toEqual([]);
  });

  it("HF_HUB_OFFLINE=1 uses the cache without a request, and says so when nothing is cached", async () => {
    hub = await startFakeHub({ "tiny-org/tiny-llama": tinyRepo() });
    const dir = await resolveModelDir("tiny-org/tiny-llama", opts());
    hub.requests.length = 0;
    process.env["HF_HUB_OFFLINE"] = "1";
    expect(await resolveModelDir("tiny-org/tiny-llama", opts())).toBe(dir);
    expect(hub.requests).toEqual([]);

    const err = await expectError(resolveModelDir("tiny-org/other", opts()));
    expect(err).toBeInstanceOf(HubModelError);
    expect(err.message).toBe("tiny-org/other: not in the local cache and the Hub is unreachable; pass --model-path to a local directory");
    expect(hub.requests).toEqual([]);
  });

  it("an unreachable Hub with nothing cached gives the same one message", async () => {
    hub = await startFakeHub({});
    const url = hub.url;
    await hub.close();
    hub = undefined;
    const err = await expectError(resolveModelDir("tiny-org/tiny-llama", opts({ hubUrl: url })));
    expect(err.message).toBe("tiny-org/tiny-llama: not in the local cache and the Hub is unreachable; pass --model-path to a local directory");
    expect((err as HubModelError).reason).toBe("not-cached");
  });

  it("finds the cache through HF_HUB_CACHE", async () => {
    hub = await startFakeHub({ "tiny-org/tiny-llama": tinyRepo() });
    process.env["HF_HUB_CACHE"] = cache;
    const dir = await resolveModelDir("tiny-org/tiny-llama", { hubUrl: hub.url });
    expect(dir).toBe(path.join(await realpath(cache), "models--tiny-org--tiny-llama", "snapshots", SHA));
  });

  it("a gated repo says how to get access, and downloads with HF_TOKEN", async () => {
    hub = await startFakeHub({ "meta-llama/Gated-1B": tinyRepo({ gated: true }) });
    const err = await expectError(resolveModelDir("meta-llama/Gated-1B", opts()));
    expect(err).toBeInstanceOf(HubModelError);
    expect((err as HubModelError).reason).toBe("gated");
    expect(err.message).toContain(`accept the license at ${hub.url}/meta-llama/Gated-1B and set HF_TOKEN`);
    await expect(stat(path.join(blobDir("meta-llama/Gated-1B"), "refs", "main"))).rejects.toThrow();

    process.env["HF_TOKEN"] = "hf_granted";
    const dir = await resolveModelDir("meta-llama/Gated-1B", opts());
    expect(await readFile(path.join(dir, "model.safetensors"))).toEqual(weights);
    expect(hub.requests.at(-1)?.authorization).toBe("Bearer hf_granted");
  });

  it("a missing repo (404, or 401 RepositoryNotFound) says it does not exist or is private", async () => {
    hub = await startFakeHub({});
    for (const status of [404, 401]) {
      hub.missingStatus = status;
      const err = await expectError(resolveModelDir("nobody/nothing", opts()));
      expect(err).toBeInstanceOf(HubModelError);
      expect(err.message).toBe("nobody/nothing: no such model on the Hub (the repo does not exist, or it is private)");
    }
  });

  it("an unknown revision is named", async () => {
    hub = await startFakeHub({ "tiny-org/tiny-llama": tinyRepo() });
    const err = await expectError(resolveModelDir("tiny-org/tiny-llama@v9", opts()));
    expect(err.message).toBe('tiny-org/tiny-llama@v9: the repo has no revision "v9"');
  });

  it("a pinned revision writes refs/<revision>; a cached commit sha needs no request", async () => {
    hub = await startFakeHub({ "tiny-org/tiny-llama": tinyRepo() });
    const dir = await resolveModelDir(`tiny-org/tiny-llama@${SHA}`, opts());
    expect(dir).toBe(path.join(blobDir("tiny-org/tiny-llama"), "snapshots", SHA));
    hub.requests.length = 0;
    expect(await resolveModelDir(`tiny-org/tiny-llama@${SHA}`, opts())).toBe(dir);
    expect(hub.requests).toEqual([]);
  });

  it("a repo with only .bin weights is refused before downloading anything", async () => {
    const repo = tinyRepo();
    delete repo.files["model.safetensors"];
    hub = await startFakeHub({ "old/bin-only": repo });
    const err = await expectError(resolveModelDir("old/bin-only", opts()));
    expect(err).toBeInstanceOf(HubModelError);
    expect(err.message).toMatch(/^old\/bin-only: this repo has no safetensors weights \(only pytorch_model\.bin, .*\); convert them/);
    expect(fileRequests(hub)).toEqual([]);
  });

  it("a download cut halfway resumes with a Range request on the next call", async () => {
    hub = await startFakeHub({ "tiny-org/tiny-llama": tinyRepo() });
    const half = Math.floor(weights.length / 2);
    hub.cut = { file: "model.safetensors", after: half, times: 1 };
    const err = await expectError(resolveModelDir("tiny-org/tiny-llama", opts({ retries: 0 })));
    expect(err).toBeInstanceOf(RuntimeFailure);
    expect(err.message).toMatch(new RegExp(`^tiny-org/tiny-llama: model\\.safetensors: download interrupted at ${half} of ${weights.length} bytes \\(`));
    expect((err as RuntimeFailure).hint).toBe("run the command again: it resumes where it stopped");

    const repoDir = blobDir("tiny-org/tiny-llama");
    const partial = path.join(repoDir, "blobs", `${sha256(weights)}.incomplete`);
    expect((await stat(partial)).size).toBe(half);
    await expect(stat(path.join(repoDir, "snapshots", SHA, "model.safetensors"))).rejects.toThrow();
    await expect(stat(path.join(repoDir, "refs", "main"))).rejects.toThrow();

    const dir = await resolveModelDir("tiny-org/tiny-llama", opts({ retries: 0 }));
    const weightRequests = fileRequests(hub).filter((r) => r.url.endsWith("/model.safetensors"));
    expect(weightRequests.map((r) => r.range)).toEqual([undefined, `bytes=${half}-`]);
    expect(await readFile(path.join(dir, "model.safetensors"))).toEqual(weights);
    await expect(stat(partial)).rejects.toThrow();
  });

  it("retries a cut download within one call, resuming from the partial file", async () => {
    hub = await startFakeHub({ "tiny-org/tiny-llama": tinyRepo() });
    hub.cut = { file: "model.safetensors", after: 100, times: 2 };
    const dir = await resolveModelDir("tiny-org/tiny-llama", opts({ retries: 2 }));
    const ranges = fileRequests(hub)
      .filter((r) => r.url.endsWith("/model.safetensors"))
      .map((r) => r.range);
    expect(ranges).toEqual([undefined, "bytes=100-", "bytes=200-"]);
    expect(await readFile(path.join(dir, "model.safetensors"))).toEqual(weights);
  });

  it("starts over when the server ignores the Range request", async () => {
    hub = await startFakeHub({ "tiny-org/tiny-llama": tinyRepo() });
    hub.cut = { file: "model.safetensors", after: 100, times: 1 };
    await expectError(resolveModelDir("tiny-org/tiny-llama", opts({ retries: 0 })));
    hub.ignoreRange = true;
    const dir = await resolveModelDir("tiny-org/tiny-llama", opts({ retries: 0 }));
    expect(await readFile(path.join(dir, "model.safetensors"))).toEqual(weights);
  });

  it("resolveFirstAvailable skips a missing repo and reports the one used", async () => {
    hub = await startFakeHub({ "meta-llama/Meta-Llama-3.1-1B": tinyRepo() });
    const got = await resolveFirstAvailable(["meta-llama/Llama-3.2-1B", "meta-llama/Meta-Llama-3.1-1B"], opts());
    expect(got.id).toBe("meta-llama/Meta-Llama-3.1-1B");
    expect(got.dir).toBe(path.join(blobDir("meta-llama/Meta-Llama-3.1-1B"), "snapshots", SHA));

    const err = await expectError(resolveFirstAvailable(["a/x", "b/y"], opts()));
    expect(err.message).toBe(
      "none of a/x, b/y is available:\n  a/x: no such model on the Hub (the repo does not exist, or it is private)\n  b/y: no such model on the Hub (the repo does not exist, or it is private)",
    );
  });
});

describe("resolveModelDir with local paths", () => {
  let cwd: string;
  beforeEach(() => {
    cwd = process.cwd();
  });
  afterEach(() => {
    process.chdir(cwd);
  });

  it("an existing directory that looks like a hub id is used as is, without a request", async () => {
    hub = await startFakeHub({ "org/name": tinyRepo() });
    const work = await mkdtemp(path.join(root, "work-"));
    await mkdir(path.join(work, "org", "name"), { recursive: true });
    await writeFile(path.join(work, "org", "name", "config.json"), CONFIG);
    process.chdir(work);
    expect(await resolveModelDir("org/name", opts())).toBe(path.join(process.cwd(), "org", "name"));
    expect(hub.requests).toEqual([]);
  });

  it("rejects a file, a directory without config.json and a missing non-id path", async () => {
    const work = await mkdtemp(path.join(root, "work-"));
    await writeFile(path.join(work, "file"), "x");
    await mkdir(path.join(work, "empty"));
    const file = await expectError(resolveModelDir(path.join(work, "file"), opts()));
    expect(file).toBeInstanceOf(ModelLoadError);
    expect(file.message).toBe(`${path.join(work, "file")}: is a file, not a model directory`);
    const empty = await expectError(resolveModelDir(path.join(work, "empty"), opts()));
    expect(empty.message).toBe(`${path.join(work, "empty")}: not a model directory (no config.json)`);
    const missing = await expectError(resolveModelDir(path.join(work, "nope"), opts()));
    expect(missing.message).toBe(`${path.join(work, "nope")}: no such directory`);
  });
});
