/**
 * Which files of a hub repo to download: config, generation config, tokenizer files and the
 * safetensors weights in the transformers layout; never `.bin`/`.pth`/`.msgpack`/onnx/gguf.
 */
import type { ListFileEntry } from "@huggingface/hub";
import { RuntimeFailure } from "../errors.js";
import { SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME } from "../io/model-files.js";
import { HubModelError } from "./hub-model-error.js";

/** One file of the repo at a fixed commit. */
export interface RemoteFile {
  /** File name (top level of the repo). */
  path: string;
  /** Bytes (the real size for LFS files, not the pointer's). */
  size: number;
  /** Blob name in the cache: the sha256 of an LFS file, else the git blob sha1 (as the Hub's ETag). */
  etag: string;
}

export const REQUIRED_FILE = "config.json";

/** Downloaded when the repo has them. tokenizer.model is only needed by sentencepiece tokenizers. */
export const OPTIONAL_FILES: readonly string[] = [
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "tokenizer.model",
];

/** Weight formats we cannot read, named in the "no safetensors" error. */
const OTHER_WEIGHTS = /\.(bin|pth|pt|ckpt|msgpack|h5|gguf|onnx)$/;

/** The index names the shard files; only these are downloaded (not e.g. a stray consolidated.safetensors). */
export interface ModelFilePlan {
  /** config.json, then the optional files the repo has. */
  metadata: RemoteFile[];
  /** model.safetensors.index.json when the weights are sharded; the shards come from its weight_map. */
  index?: RemoteFile;
  /** model.safetensors when the weights are not sharded, else empty. */
  weights: RemoteFile[];
  /** Every top-level file of the repo by name, to look the shards up. */
  files: ReadonlyMap<string, RemoteFile>;
}

const ETAG = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

function toRemoteFile(entry: ListFileEntry, label: string): RemoteFile {
  const etag = entry.lfs?.oid ?? entry.oid;
  // The etag becomes a file name under blobs/: accept only a hex digest.
  if (etag === undefined || !ETAG.test(etag)) {
    throw new RuntimeFailure(`${label}: the Hub listed ${entry.path} without a valid oid (${JSON.stringify(etag)})`);
  }
  return { path: entry.path, size: entry.lfs?.size ?? entry.size, etag };
}

/**
 * Choose the files to download from the repo's top-level listing.
 * @param entries `listFiles` output at a commit (non-recursive)
 * @param label what the user asked for, starts error messages
 * @throws HubModelError "not-a-model" without config.json, "no-safetensors" without usable weights
 */
export function planModelFiles(entries: readonly ListFileEntry[], label: string): ModelFilePlan {
  const files = new Map<string, RemoteFile>();
  for (const e of entries) {
    if (e.type === "file" && !e.path.includes("/")) {
      files.set(e.path, toRemoteFile(e, label));
    }
  }
  const config = files.get(REQUIRED_FILE);
  if (!config) {
    throw new HubModelError(`${label}: the repo has no ${REQUIRED_FILE}; it is not a transformers model`, {
      reason: "not-a-model",
      hint: "pass the id of a transformers causal-LM repo",
    });
  }
  const metadata = [config, ...OPTIONAL_FILES.flatMap((name) => files.get(name) ?? [])];
  const index = files.get(SAFE_WEIGHTS_INDEX_NAME);
  if (index) {
    return { metadata, index, weights: [], files };
  }
  const single = files.get(SAFE_WEIGHTS_NAME);
  if (single) {
    return { metadata, weights: [single], files };
  }
  const names = [...files.keys()];
  const other = names.filter((n) => OTHER_WEIGHTS.test(n));
  const stray = names.filter((n) => n.endsWith(".safetensors"));
  const dirs = entries.filter((e) => e.type === "directory" && (e.path === "onnx" || e.path === "original")).map((e) => `${e.path}/`);
  if (other.length > 0 || (stray.length === 0 && dirs.length > 0)) {
    throw new HubModelError(
      `${label}: this repo has no safetensors weights (only ${[...other, ...dirs].join(", ")}); convert them to safetensors and pass --model-path to the converted directory`,
      {
        reason: "no-safetensors",
        hint: `python -c "from transformers import AutoModelForCausalLM as M; M.from_pretrained('${label}').save_pretrained('out-dir', safe_serialization=True)" (or open a conversion PR with https://huggingface.co/spaces/safetensors/convert)`,
      },
    );
  }
  throw new HubModelError(
    `${label}: the repo has no ${SAFE_WEIGHTS_NAME} or ${SAFE_WEIGHTS_INDEX_NAME}${stray.length > 0 ? ` (only ${stray.join(", ")}, not in the transformers layout)` : ""}`,
    { reason: "no-safetensors", hint: "pass a repo with transformers safetensors weights" },
  );
}

/**
 * The shard file names of a `model.safetensors.index.json` (its weight_map values), sorted.
 * @param text the index file's content
 * @param file its path, for messages
 * @throws HubModelError when it is not valid JSON or a shard is not a plain `.safetensors` file name
 */
export function parseIndexShards(text: string, file: string): string[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new HubModelError(`${file}: not valid JSON`, { reason: "no-safetensors", cause });
  }
  const weightMap = typeof json === "object" && json !== null ? (json as Record<string, unknown>)["weight_map"] : undefined;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    throw new HubModelError(`${file}: "weight_map" must be an object { tensor name: shard file }`, { reason: "no-safetensors" });
  }
  const shards = new Set<string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== "string" || !/^[\w.-]+\.safetensors$/.test(shard) || shard.startsWith(".")) {
      throw new HubModelError(`${file}: weight_map["${name}"] must be a .safetensors file name in the same directory, got ${JSON.stringify(shard)}`, {
        reason: "no-safetensors",
      });
    }
    shards.add(shard);
  }
  return [...shards].sort();
}
