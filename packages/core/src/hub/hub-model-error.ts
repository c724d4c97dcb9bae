/**
 * Why a Hugging Face model could not be obtained, and the HTTP status -> message mapping.
 */
import { ModelLoadError, RuntimeFailure, type CoreError } from "../errors.js";

/** What went wrong; `resolveFirstAvailable` moves on to the next id for the first three. */
export type HubModelErrorReason = "not-found" | "gated" | "not-cached" | "not-a-model" | "no-safetensors";

/** A hub model that cannot be used (missing, gated, not cached offline, wrong files): exit 2. */
export class HubModelError extends ModelLoadError {
  readonly reason: HubModelErrorReason;
  constructor(message: string, opts: { reason: HubModelErrorReason; hint?: string; cause?: unknown }) {
    super(message, { hint: opts.hint, cause: opts.cause });
    this.reason = opts.reason;
  }
}

/** Context for `hubHttpError`. */
export interface HubHttpErrorContext {
  /** What the user asked for, e.g. `org/name@v1` (starts the message). */
  label: string;
  repo: string;
  revision: string;
  hubUrl: string;
  hasToken: boolean;
  /** The file being downloaded, if any. */
  file?: string;
  cause?: unknown;
}

/**
 * Turn a failed Hub response into a typed error. The Hub's `X-Error-Code` header tells a gated
 * repo from a missing one (it answers 401 to both when no token is sent).
 * @param status HTTP status
 * @param errorCode the `X-Error-Code` response header, if any
 */
export function hubHttpError(status: number, errorCode: string | undefined, ctx: HubHttpErrorContext): CoreError {
  const page = `${ctx.hubUrl}/${ctx.repo}`;
  if (errorCode === "RevisionNotFound") {
    return new HubModelError(`${ctx.label}: the repo has no revision "${ctx.revision}"`, {
      reason: "not-found",
      hint: `see the branches and tags at ${page}`,
      cause: ctx.cause,
    });
  }
  if (errorCode === "RepositoryNotFound" || (status === 404 && errorCode !== "GatedRepo" && errorCode !== "EntryNotFound")) {
    return new HubModelError(`${ctx.label}: no such model on the Hub (the repo does not exist, or it is private)`, {
      reason: "not-found",
      hint: ctx.hasToken
        ? "check the id; HF_TOKEN is set but does not give access to it"
        : "check the id; for a private repo set HF_TOKEN; for a local directory pass an existing path",
      cause: ctx.cause,
    });
  }
  if (errorCode === "GatedRepo" || status === 401 || status === 403) {
    return new HubModelError(
      `${ctx.label}: access denied (HTTP ${status}): the model is gated; accept the license at ${page} and set HF_TOKEN`,
      {
        reason: "gated",
        hint: ctx.hasToken
          ? "HF_TOKEN is set: make sure its account has accepted the license (approval can take a while) and the token can read gated repos"
          : "create a read token at https://huggingface.co/settings/tokens and export HF_TOKEN=hf_...",
        cause: ctx.cause,
      },
    );
  }
  const what = ctx.file === undefined ? "" : ` for ${ctx.file}`;
  return new RuntimeFailure(`${ctx.label}: the Hub answered HTTP ${status}${errorCode ? ` (${errorCode})` : ""}${what}`, {
    hint: "try again later",
    cause: ctx.cause,
  });
}
