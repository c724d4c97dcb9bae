export { resolveModelDir, resolveFirstAvailable, type ResolveModelOptions, type ResolvedModel, type DownloadProgress } from "./resolve-model-dir.js";
export { HubModelError, type HubModelErrorReason } from "./hub-model-error.js";
export { parseHubId, type HubId } from "./hub-id.js";
export { hubCacheDir } from "./hub-cache.js";
