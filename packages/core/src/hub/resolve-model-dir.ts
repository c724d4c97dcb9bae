/**
 * Model directories from a local path or straight from the Hugging Face Hub.
 *
 * A hub id is downloaded into the standard Hugging Face cache (see `hub-cache.ts`), so Python
 * tools and we share it. From huggingface.js we use `modelInfo` (revision -> commit),
 * `listFiles` (names, sizes, etags), the cache path helpers and `HubApiError`. We do not use
 * `snapshotDownload` / `downloadFileToCacheDir`: they fetch every file of the repo (including
 * `.bin`/onnx/gguf weights), always ask the API for `main` (no offline mode), print with
 * `console.debug`, report no progress and cannot resume a partial download. That part
 * (`download-blob.ts`, the offline fallback below) is ours and follows huggingface_hub.
 */
import { mkdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { HubApiError, listFiles, modelInfo, REGEX_COMMIT_HASH, type ListFileEntry } from "@huggingface/hub";
import { CoreError, InputError, ModelLoadError, RuntimeFailure } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { SAFE_WEIGHTS_INDEX_NAME } from "../io/model-files.js";
import { downloadBlob, isNetworkError } from "./download-blob.js";
import { fileSize, hubCacheDir, isCompleteSnapshot, isFile, linkBlob, readRef, repoCacheDir, snapshotDir, writeRef } from "./hub-cache.js";
import { parseHubId, type HubId } from "./hub-id.js";
import { HubModelError, hubHttpError, type HubModelErrorReason } from "./hub-model-error.js";
import { parseIndexShards, planModelFiles, REQUIRED_FILE, type RemoteFile } from "./model-file-plan.js";

/** Bytes of one file on disk so far; `loaded === total` when it is done (or was cached). */
export interface DownloadProgress {
  /** File name in the repo, e.g. `model-00001-of-00002.safetensors`. */
  file: string;
  loaded: number;
  total: number;
}

/** Options of `resolveModelDir`. */
export interface ResolveModelOptions {
  /** Receives what was resolved, downloaded or taken from the cache (default: silent). */
  log?: Logger;
  /** Per-file download progress, for a bar. */
  onProgress?: (e: DownloadProgress) => void;
  /** Hub base URL (default `$HF_ENDPOINT`, else https://huggingface.co). */
  hubUrl?: string;
  /** fetch to use for every request (default the global one). */
  fetch?: typeof fetch;
  /** Hub cache root (default `$HF_HUB_CACHE`, `$HF_HOME/hub` or `~/.cache/huggingface/hub`). */
  cacheDir?: string;
  /** Use only the cache, never the network (default: `$HF_HUB_OFFLINE` is 1/true/yes/on). */
  offline?: boolean;
  /** Access token for gated and private repos (default `$HF_TOKEN`). */
  token?: string;
  /** Extra attempts when a download is cut, each resuming where the last stopped (default 2). */
  retries?: number;
  /** Delay before the first retry, doubled for each next one (default 1000 ms). */
  retryDelayMs?: number;
  /**
   * Only config.json is needed (a memory plan): a hub id downloads just config.json (after
   * checking the repo has usable weights), and a cached snapshot with config.json is enough.
   * The directory returned may then hold no weights.
   */
  configOnly?: boolean;
}

const DEFAULT_HUB_URL = "https://huggingface.co";

function isTrue(value: string | undefined): boolean {
  return value !== undefined && ["1", "true", "yes", "on"].includes(value.trim().toLowerCase());
}

/**
 * Resolve a model given as a local directory or a Hugging Face model id to an absolute local
 * directory holding config.json, the tokenizer files and safetensors weights.
 *
 * 1. An existing path is always a local directory, even if it reads like `org/name`.
 * 2. `org/name[@revision]` that does not exist locally is downloaded (only the files a
 *    transformers causal LM needs) into the Hugging Face cache; the snapshot directory is returned.
 * 3. Offline (`opts.offline`, `HF_HUB_OFFLINE=1`) or with the Hub unreachable, a complete cached
 *    snapshot is used.
 * @param idOrPath a directory, or a hub id such as `meta-llama/Llama-3.2-1B` or `org/name@v1.0`
 * @param opts logging, progress, hub URL, cache dir, offline mode, token
 * @throws ModelLoadError for a missing or non-model local path; HubModelError when the repo is
 *   missing, gated, not cached offline or has no safetensors; RuntimeFailure when a download fails
 */
export async function resolveModelDir(idOrPath: string, opts: ResolveModelOptions = {}): Promise<string> {
  if (idOrPath.trim() === "") {
    throw new InputError("model: empty path or hub id", { hint: "pass a model directory or a hub id such as org/name" });
  }
  const local = await localModelDir(idOrPath);
  if (local !== undefined) {
    return local;
  }
  const id = parseHubId(idOrPath);
  if (!id) {
    throw new ModelLoadError(`${path.resolve(idOrPath)}: no such directory`, {
      hint: "pass an existing model directory, or a Hugging Face model id such as org/name",
    });
  }
  return hubModelDir(idOrPath, id, opts);
}

/** The absolute directory if `p` exists (checked as a model directory), else undefined. */
async function localModelDir(p: string): Promise<string | undefined> {
  const abs = path.resolve(p);
  let isDir: boolean;
  try {
    isDir = (await stat(abs)).isDirectory();
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      return undefined;
    }
    throw new ModelLoadError(`${abs}: cannot read (${code ?? String(cause)})`, { cause });
  }
  if (!isDir) {
    throw new ModelLoadError(`${abs}: is a file, not a model directory`, { hint: "pass the directory that holds config.json and the weights" });
  }
  if (!(await isFile(path.join(abs, "config.json")))) {
    throw new ModelLoadError(`${abs}: not a model directory (no config.json)`, {
      hint: "pass a Hugging Face model directory (config.json, tokenizer files, safetensors weights)",
    });
  }
  return abs;
}

/** Everything one hub resolution needs. */
interface HubContext {
  label: string;
  id: HubId;
  hubUrl: string;
  token?: string;
  fetch: typeof fetch;
  /** `X-Error-Code` of the last failed response (HubApiError does not keep headers). */
  lastErrorCode?: string;
  repoDir: string;
  log: Logger;
  opts: ResolveModelOptions;
}

async function hubModelDir(label: string, id: HubId, opts: ResolveModelOptions): Promise<string> {
  const log = opts.log ?? silentLogger;
  const repoDir = repoCacheDir(hubCacheDir(opts.cacheDir), id.repo);
  const usable = opts.configOnly ? (dir: string) => isFile(path.join(dir, REQUIRED_FILE)) : isCompleteSnapshot;
  if (opts.offline ?? isTrue(process.env["HF_HUB_OFFLINE"])) {
    log.debug({ model: label }, "offline mode: using the cache");
    return cachedSnapshot(label, id, repoDir, { offline: true, usable });
  }
  // A commit already complete in the cache cannot change: no request at all (as huggingface_hub).
  if (REGEX_COMMIT_HASH.test(id.revision) && (await usable(snapshotDir(repoDir, id.revision)))) {
    return snapshotDir(repoDir, id.revision);
  }
  const token = opts.token ?? (process.env["HF_TOKEN"] || undefined);
  if (token !== undefined && !token.startsWith("hf_")) {
    throw new InputError(`${opts.token !== undefined ? "token" : "HF_TOKEN"}: a Hugging Face access token starts with "hf_"`, {
      hint: "copy a read token from https://huggingface.co/settings/tokens",
    });
  }
  const baseFetch = opts.fetch ?? fetch;
  const ctx: HubContext = {
    label,
    id,
    hubUrl: (opts.hubUrl ?? (process.env["HF_ENDPOINT"] || DEFAULT_HUB_URL)).replace(/\/+$/, ""),
    token,
    fetch: async (input, init) => {
      const res = await baseFetch(input, init);
      if (!res.ok) {
        ctx.lastErrorCode = res.headers.get("x-error-code") ?? undefined;
      }
      return res;
    },
    repoDir,
    log,
    opts,
  };

  let commit: string;
  let entries: ListFileEntry[];
  try {
    ({ commit, entries } = await listRepo(ctx));
  } catch (err) {
    if (isNetworkError(err) || (err instanceof HubApiError && err.statusCode >= 500)) {
      log.warn({ model: label, err: err instanceof Error ? err.message : String(err) }, "the Hub is unreachable; using the cache");
      return cachedSnapshot(label, id, repoDir, { offline: false, cause: err, usable });
    }
    throw toCoreError(err, ctx);
  }
  log.info({ model: label, commit }, "resolved hub model");
  const dir = opts.configOnly ? await downloadConfig(ctx, commit, entries) : await downloadSnapshot(ctx, commit, entries);
  await writeRef(repoDir, id.revision, commit);
  return dir;
}

/** The revision's commit sha and the repo's top-level files at that commit. */
async function listRepo(ctx: HubContext): Promise<{ commit: string; entries: ListFileEntry[] }> {
  const common = { hubUrl: ctx.hubUrl, fetch: ctx.fetch, ...(ctx.token !== undefined && { accessToken: ctx.token }) };
  const info = await modelInfo({ ...common, name: ctx.id.repo, revision: ctx.id.revision, additionalFields: ["sha"] });
  const commit = info.sha;
  if (typeof commit !== "string" || !REGEX_COMMIT_HASH.test(commit)) {
    throw new RuntimeFailure(`${ctx.label}: the Hub returned no commit sha for revision "${ctx.id.revision}"`);
  }
  const entries: ListFileEntry[] = [];
  for await (const e of listFiles({ ...common, repo: { type: "model", name: ctx.id.repo }, revision: commit })) {
    entries.push(e);
  }
  return { commit, entries };
}

/** Download the planned files of `commit` (skipping those already in the snapshot). */
async function downloadSnapshot(ctx: HubContext, commit: string, entries: ListFileEntry[]): Promise<string> {
  const snapshot = snapshotDir(ctx.repoDir, commit);
  const plan = planModelFiles(entries, ctx.label);
  // Small files first, weights last: an interrupted run leaves no weights without their config.
  for (const file of [...plan.metadata, ...(plan.index ? [plan.index] : [])]) {
    await ensureFile(ctx, commit, file);
  }
  let weights = plan.weights;
  if (plan.index) {
    const indexFile = path.join(snapshot, SAFE_WEIGHTS_INDEX_NAME);
    weights = parseIndexShards(await readFile(indexFile, "utf8"), indexFile).map((name) => {
      const file = plan.files.get(name);
      if (!file) {
        throw new HubModelError(`${ctx.label}: ${SAFE_WEIGHTS_INDEX_NAME} lists ${name}, which the repo does not have`, {
          reason: "no-safetensors",
        });
      }
      return file;
    });
  }
  for (const file of weights) {
    await ensureFile(ctx, commit, file);
  }
  return snapshot;
}

/** Only config.json of `commit` (planModelFiles still refuses a repo without usable weights). */
async function downloadConfig(ctx: HubContext, commit: string, entries: ListFileEntry[]): Promise<string> {
  const [config] = planModelFiles(entries, ctx.label).metadata;
  await ensureFile(ctx, commit, config as RemoteFile);
  return snapshotDir(ctx.repoDir, commit);
}

/** Put `file` into `snapshots/<commit>/`, downloading its blob unless the cache has it. */
async function ensureFile(ctx: HubContext, commit: string, file: RemoteFile): Promise<void> {
  const pointer = path.join(snapshotDir(ctx.repoDir, commit), file.path);
  const blob = path.join(ctx.repoDir, "blobs", file.etag);
  const report = (loaded: number, total: number): void => ctx.opts.onProgress?.({ file: file.path, loaded, total });
  if (await isFile(pointer)) {
    report(file.size, file.size);
    return;
  }
  if ((await fileSize(blob)) !== file.size) {
    await mkdir(path.dirname(blob), { recursive: true });
    ctx.log.debug({ model: ctx.label, file: file.path, size: file.size }, "downloading");
    await downloadBlob({
      url: `${ctx.hubUrl}/${ctx.id.repo}/resolve/${commit}/${encodeURIComponent(file.path)}`,
      blobPath: blob,
      size: file.size,
      token: ctx.token,
      fetch: ctx.fetch,
      retries: ctx.opts.retries ?? 2,
      retryDelayMs: ctx.opts.retryDelayMs ?? 1000,
      httpError: (status, errorCode) => hubHttpError(status, errorCode, { ...errorContext(ctx), file: file.path }),
      onProgress: report,
      log: ctx.log,
      label: `${ctx.label}: ${file.path}`,
    });
  } else {
    report(file.size, file.size);
  }
  await linkBlob(blob, pointer);
}

function errorContext(ctx: HubContext): { label: string; repo: string; revision: string; hubUrl: string; hasToken: boolean } {
  return { label: ctx.label, repo: ctx.id.repo, revision: ctx.id.revision, hubUrl: ctx.hubUrl, hasToken: ctx.token !== undefined };
}

/** Map an error of the metadata requests to a typed error. */
function toCoreError(err: unknown, ctx: HubContext): CoreError {
  if (err instanceof CoreError) {
    return err;
  }
  if (err instanceof HubApiError) {
    return hubHttpError(err.statusCode, ctx.lastErrorCode, { ...errorContext(ctx), cause: err });
  }
  return new RuntimeFailure(`${ctx.label}: unexpected answer from the Hub (${err instanceof Error ? err.message : String(err)})`, { cause: err });
}

/** The usable (complete, or with `configOnly` holding config.json) cached snapshot of `id.revision`, or the "not in the local cache" error. */
async function cachedSnapshot(label: string, id: HubId, repoDir: string, why: { offline: boolean; cause?: unknown; usable: (dir: string) => Promise<boolean> }): Promise<string> {
  const commit = await readRef(repoDir, id.revision);
  if (commit !== undefined && (await why.usable(snapshotDir(repoDir, commit)))) {
    return snapshotDir(repoDir, commit);
  }
  throw new HubModelError(`${label}: not in the local cache and the Hub is unreachable; pass --model-path to a local directory`, {
    reason: "not-cached",
    hint: why.offline ? "HF_HUB_OFFLINE is set: unset it to download the model" : "check the network connection (or HF_ENDPOINT / a proxy)",
    cause: why.cause,
  });
}

/** Result of `resolveFirstAvailable`. */
export interface ResolvedModel {
  /** The id (or path) that was used. */
  id: string;
  /** Its absolute local directory. */
  dir: string;
}

/** Failures that make `resolveFirstAvailable` try the next id; anything else stops it. */
const TRY_NEXT: ReadonlySet<HubModelErrorReason> = new Set(["not-found", "gated", "not-cached"]);

/**
 * Resolve the first available of several models, e.g. a family's hub ids in order of
 * preference (`familyHubIds`: Llama-3.2, then Meta-Llama-3.1). Moves on when a repo is
 * missing, gated or not cached offline; a download failure stops at once.
 * @param ids ids (or paths) in order of preference
 * @param opts as for `resolveModelDir`; `log` says which id was used and why others were skipped
 * @throws the only error when one id was given; else HubModelError listing every failure
 */
export async function resolveFirstAvailable(ids: readonly string[], opts: ResolveModelOptions = {}): Promise<ResolvedModel> {
  const log = opts.log ?? silentLogger;
  if (ids.length === 0) {
    throw new InputError("no model ids to try");
  }
  const failures: HubModelError[] = [];
  for (const id of ids) {
    try {
      const dir = await resolveModelDir(id, opts);
      log.info({ model: id, skipped: failures.map((f) => f.message) }, `using ${id}`);
      return { id, dir };
    } catch (err) {
      if (!(err instanceof HubModelError) || !TRY_NEXT.has(err.reason) || ids.length === 1) {
        throw err;
      }
      log.info({ model: id, reason: err.reason }, `${id} is not available; trying the next model`);
      failures.push(err);
    }
  }
  const first = failures[0] as HubModelError;
  throw new HubModelError(`none of ${ids.join(", ")} is available:\n${failures.map((f) => `  ${f.message}`).join("\n")}`, {
    reason: first.reason,
    hint: first.hint,
    cause: failures,
  });
}
