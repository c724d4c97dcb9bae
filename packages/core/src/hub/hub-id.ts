/**
 * Hugging Face model ids as typed on the command line: `org/name`, optionally `org/name@revision`
 * (a branch, a tag or a commit sha). The rules follow huggingface_hub's `validate_repo_id`:
 * word characters, `-` and `.`, each part starting and ending with a word character, at most
 * 96 characters, no `--` or `..`.
 */

/** A parsed hub model id. */
export interface HubId {
  /** `org/name`. */
  repo: string;
  /** Branch, tag or commit sha; `main` when none was given. */
  revision: string;
}

const HUB_ID = /^([\w.-]+)\/([\w.-]+)(?:@([\w./-]+))?$/;
const PART = /^\w(?:[\w.-]*\w)?$/;
const MAX_PART_LENGTH = 96;

function validPart(part: string): boolean {
  return part.length <= MAX_PART_LENGTH && PART.test(part) && !part.includes("--") && !part.includes("..") && !part.endsWith(".git");
}

/** A revision must not climb out of `refs/` when written there: no empty, `.` or `..` segment. */
function validRevision(rev: string): boolean {
  return rev.split("/").every((seg) => seg !== "" && seg !== "." && seg !== "..");
}

/**
 * Parse `org/name[@revision]`.
 * @param text what the user typed
 * @returns the id, or undefined when `text` does not look like a hub model id
 */
export function parseHubId(text: string): HubId | undefined {
  const m = HUB_ID.exec(text);
  if (!m) {
    return undefined;
  }
  const [, org = "", name = "", revision] = m;
  if (!validPart(org) || !validPart(name) || (revision !== undefined && !validRevision(revision))) {
    return undefined;
  }
  return { repo: `${org}/${name}`, revision: revision ?? "main" };
}
