/**
 * The Hugging Face cache layout, shared with Python tools (huggingface_hub):
 *
 *   <cache>/models--org--name/blobs/<etag>                 file contents (etag: sha256 for LFS, git sha1 otherwise)
 *   <cache>/models--org--name/blobs/<etag>.incomplete      a download in progress (resumed with a Range request)
 *   <cache>/models--org--name/snapshots/<commit>/<file>    -> ../../blobs/<etag> (relative symlink)
 *   <cache>/models--org--name/refs/<revision>              the commit sha of a branch or tag
 */
import { copyFile, mkdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { getHFHubCachePath, getRepoFolderName, REGEX_COMMIT_HASH } from "@huggingface/hub";
import { SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME } from "../io/model-files.js";
import { parseIndexShards } from "./model-file-plan.js";

/**
 * The hub cache root: `cacheDir`, else `$HF_HUB_CACHE`, `$HF_HOME/hub`, `$XDG_CACHE_HOME/huggingface/hub`
 * or `~/.cache/huggingface/hub` (huggingface.js `getHFHubCachePath`, same order as Python).
 */
export function hubCacheDir(cacheDir?: string): string {
  return path.resolve(cacheDir ?? getHFHubCachePath());
}

/** `<cache>/models--org--name`. */
export function repoCacheDir(cacheRoot: string, repo: string): string {
  return path.join(cacheRoot, getRepoFolderName({ type: "model", name: repo }));
}

/** `<repoDir>/snapshots/<commit>`. */
export function snapshotDir(repoDir: string, commit: string): string {
  return path.join(repoDir, "snapshots", commit);
}

export async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** Size of `file`, or undefined if it does not exist. */
export async function fileSize(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size;
  } catch {
    return undefined;
  }
}

/**
 * The commit a revision points to in the cache: the revision itself if it is a commit sha,
 * else the content of `refs/<revision>`; undefined when unknown.
 */
export async function readRef(repoDir: string, revision: string): Promise<string | undefined> {
  if (REGEX_COMMIT_HASH.test(revision)) {
    return revision;
  }
  try {
    const commit = (await readFile(path.join(repoDir, "refs", revision), "utf8")).trim();
    return REGEX_COMMIT_HASH.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

/** Write `refs/<revision>` = commit (nothing for a revision that is itself a commit sha, as huggingface_hub). */
export async function writeRef(repoDir: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) {
    return;
  }
  const ref = path.join(repoDir, "refs", revision);
  await mkdir(path.dirname(ref), { recursive: true });
  await writeFile(ref, commit);
}

/**
 * Point `pointer` (a snapshot file) at `blob` with a relative symlink, as huggingface_hub does,
 * so the cache survives being moved; copy the blob where symlinks are not allowed (Windows).
 */
export async function linkBlob(blob: string, pointer: string): Promise<void> {
  await mkdir(path.dirname(pointer), { recursive: true });
  await rm(pointer, { force: true });
  try {
    await symlink(path.relative(path.dirname(pointer), blob), pointer);
  } catch {
    await copyFile(blob, pointer);
  }
}

/**
 * True when a snapshot holds a usable model: config.json and every weight file (the shards
 * listed in model.safetensors.index.json, else model.safetensors). Files only appear in a
 * snapshot once their blob is complete, so presence is enough; a dangling link counts as missing.
 */
export async function isCompleteSnapshot(dir: string): Promise<boolean> {
  if (!(await isFile(path.join(dir, "config.json")))) {
    return false;
  }
  const index = path.join(dir, SAFE_WEIGHTS_INDEX_NAME);
  if (await isFile(index)) {
    let shards: string[];
    try {
      shards = parseIndexShards(await readFile(index, "utf8"), index);
    } catch {
      return false;
    }
    for (const shard of shards) {
      if (!(await isFile(path.join(dir, shard)))) {
        return false;
      }
    }
    return true;
  }
  return isFile(path.join(dir, SAFE_WEIGHTS_NAME));
}
