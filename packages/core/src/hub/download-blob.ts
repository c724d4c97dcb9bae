/**
 * One resumable file download into the cache's `blobs/` folder, as huggingface_hub's `http_get`:
 * bytes go to `blobs/<etag>.incomplete`; a later attempt (a retry, or the next run after the
 * process was killed) continues it with `Range: bytes=<size>-`; the finished file is renamed to
 * `blobs/<etag>`.
 *
 * huggingface.js's `downloadFileToCacheDir` cannot do this: it streams the whole file in one
 * request with no Range resume and no progress, and logs with `console.debug`. Its `WebBlob`
 * does send Range requests for slices, but hides the status code, so a server that ignores the
 * Range (200 instead of 206) would silently append a full copy to the partial file.
 */
import { open, rename, rm } from "node:fs/promises";
import type { Logger } from "../log.js";
import { CoreError, RuntimeFailure } from "../errors.js";
import { fileSize } from "./hub-cache.js";

/** Parameters of `downloadBlob`. */
export interface DownloadBlobParams {
  /** The file's resolve URL at a fixed commit. */
  url: string;
  /** Final blob path; `<blobPath>.incomplete` holds the partial download. */
  blobPath: string;
  /** Expected size in bytes (from the repo listing). */
  size: number;
  /** Bearer token for gated / private repos. */
  token?: string;
  fetch: typeof fetch;
  /** Extra attempts after a network failure, each resuming where the last one stopped. */
  retries: number;
  /** Delay before retry n (1-based) is `retryDelayMs * 2^(n-1)`. */
  retryDelayMs: number;
  /** Turn a non-2xx response into a typed error (gated, not found...). */
  httpError: (status: number, errorCode: string | undefined) => CoreError;
  /** Called with bytes on disk so far, at most every `PROGRESS_INTERVAL_MS` and at the end. */
  onProgress?: (loaded: number, total: number) => void;
  log: Logger;
  /** Names the file in messages, e.g. `org/name: model.safetensors`. */
  label: string;
}

const PROGRESS_INTERVAL_MS = 100;

/** Error codes of a dropped or refused connection (Node and undici). */
const NETWORK_CODES = new Set(["ECONNRESET", "ECONNREFUSED", "ECONNABORTED", "EPIPE", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH"]);

function errorCode(err: unknown): string | undefined {
  const code = typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : undefined;
}

/**
 * True for a failure to reach the server or a connection dropped mid-response: undici's
 * `TypeError("fetch failed")` / `TypeError("terminated")`, or an error whose (cause's) code is
 * a socket error.
 */
export function isNetworkError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof CoreError) {
      return false;
    }
    if (e instanceof TypeError && (e.message === "fetch failed" || e.message === "terminated")) {
      return true;
    }
    const code = errorCode(e);
    if (code !== undefined && (NETWORK_CODES.has(code) || code.startsWith("UND_ERR_"))) {
      return true;
    }
  }
  return false;
}

/** A retryable server-side failure (5xx), thrown inside one attempt. */
class ServerError extends Error {}

/**
 * Download `params.url` to `params.blobPath`, resuming a previous partial download.
 * @throws the `httpError` of a 4xx answer; RuntimeFailure when the transfer keeps failing
 *   (the partial file stays, so the next call resumes it)
 */
export async function downloadBlob(params: DownloadBlobParams): Promise<void> {
  const incomplete = `${params.blobPath}.incomplete`;
  for (let attempt = 0; ; attempt++) {
    try {
      await attemptDownload(params, incomplete);
      break;
    } catch (err) {
      const retryable = isNetworkError(err) || err instanceof ServerError;
      if (!retryable || attempt >= params.retries) {
        if (!retryable) {
          throw err;
        }
        const done = (await fileSize(incomplete)) ?? 0;
        throw new RuntimeFailure(`${params.label}: download interrupted at ${done} of ${params.size} bytes (${describe(err)})`, {
          hint: "run the command again: it resumes where it stopped",
          cause: err,
        });
      }
      const delay = params.retryDelayMs * 2 ** attempt;
      params.log.warn({ file: params.label, attempt: attempt + 1, delayMs: delay, err: describe(err) }, "download interrupted; resuming");
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  const got = (await fileSize(incomplete)) ?? 0;
  if (got !== params.size) {
    await rm(incomplete, { force: true });
    throw new RuntimeFailure(`${params.label}: downloaded ${got} bytes, the Hub listed ${params.size}`, { hint: "run the command again" });
  }
  await rename(incomplete, params.blobPath);
}

function describe(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 3; e = e.cause, depth++) {
    parts.push(e.message);
  }
  return parts.join(": ") || String(err);
}

/** One HTTP request, appending to `incomplete` from its current size. */
async function attemptDownload(params: DownloadBlobParams, incomplete: string): Promise<void> {
  let offset = (await fileSize(incomplete)) ?? 0;
  if (offset > params.size) {
    await rm(incomplete, { force: true });
    offset = 0;
  }
  if (offset === params.size) {
    if (offset === 0) {
      await (await open(incomplete, "w")).close();
    }
    params.onProgress?.(offset, params.size);
    return;
  }
  const headers: Record<string, string> = {
    // Byte counts (and Range offsets) refer to the stored file, not a compressed transfer.
    "Accept-Encoding": "identity",
    ...(params.token !== undefined && { Authorization: `Bearer ${params.token}` }),
    ...(offset > 0 && { Range: `bytes=${offset}-` }),
  };
  const res = await params.fetch(params.url, { headers });
  if (res.status === 416) {
    // The partial file does not fit the remote one: start over.
    await res.body?.cancel();
    await rm(incomplete, { force: true });
    throw new ServerError(`HTTP 416 for bytes=${offset}-`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    if (res.status >= 500) {
      throw new ServerError(`HTTP ${res.status}`);
    }
    throw params.httpError(res.status, res.headers.get("x-error-code") ?? undefined);
  }
  if (offset > 0) {
    if (res.status === 206) {
      const range = res.headers.get("content-range") ?? "";
      if (!range.startsWith(`bytes ${offset}-`)) {
        await res.body?.cancel();
        throw new RuntimeFailure(`${params.label}: asked for bytes ${offset}-, the server sent "${range}"`);
      }
    } else {
      params.log.debug({ file: params.label }, "server ignored the Range request; downloading from the start");
      offset = 0;
    }
  }
  if (!res.body) {
    throw new RuntimeFailure(`${params.label}: the Hub sent no body`);
  }
  params.log.debug({ file: params.label, offset, size: params.size }, offset > 0 ? "resuming download" : "downloading");
  const fh = await open(incomplete, offset > 0 ? "a" : "w");
  let loaded = offset;
  let last = 0;
  try {
    params.onProgress?.(loaded, params.size);
    for await (const chunk of res.body) {
      await fh.write(chunk);
      loaded += chunk.byteLength;
      const now = Date.now();
      if (now - last >= PROGRESS_INTERVAL_MS) {
        last = now;
        params.onProgress?.(loaded, params.size);
      }
    }
  } finally {
    await fh.close();
  }
  params.onProgress?.(loaded, params.size);
}
