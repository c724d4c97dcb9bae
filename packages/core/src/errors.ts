/**
 * Typed errors. Core never prints and never exits: it throws one of these, and the one
 * top-level handler of each CLI (`cli/run-main.ts`) renders it and sets the exit code.
 *
 * Exit codes: 0 ok · 1 a result below threshold (check) · 2 usage or bad input ·
 * 3 runtime failure (model, I/O, backend) · 4 internal bug.
 */
export type ErrorCode =
  | "INVALID_INPUT"
  | "INVALID_FILE"
  | "FILE_EXISTS"
  | "NOT_IMPLEMENTED"
  | "MODEL_LOAD"
  | "SAFETENSORS_FORMAT"
  | "TOKENIZER"
  | "BACKEND"
  | "OUT_OF_MEMORY"
  | "RUNTIME"
  | "INTERNAL";

export interface CoreErrorOptions {
  code: ErrorCode;
  exitCode: number;
  /** One line telling the user how to fix it. */
  hint?: string;
  cause?: unknown;
}

export class CoreError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  readonly hint?: string;
  constructor(message: string, opts: CoreErrorOptions) {
    super(message, { cause: opts.cause });
    this.name = new.target.name;
    this.code = opts.code;
    this.exitCode = opts.exitCode;
    this.hint = opts.hint;
  }
}

type SubOptions = { hint?: string; cause?: unknown };

/** A bad flag value, file or field: exit 2. */
export class InputError extends CoreError {
  constructor(message: string, opts: SubOptions & { code?: ErrorCode } = {}) {
    super(message, { code: opts.code ?? "INVALID_INPUT", exitCode: 2, hint: opts.hint, cause: opts.cause });
  }
}

/** The output exists and --force was not given: exit 2. */
export class FileExistsError extends InputError {
  constructor(file: string, opts: SubOptions = {}) {
    super(`${file}: already exists`, { code: "FILE_EXISTS", hint: opts.hint ?? "pass --force to overwrite it", cause: opts.cause });
  }
}

/** A capability that a later release provides: exit 2 (the request cannot be served). */
export class NotImplementedError extends CoreError {
  constructor(message: string, opts: SubOptions = {}) {
    super(message, { code: "NOT_IMPLEMENTED", exitCode: 2, ...opts });
  }
}

/** A model directory that cannot be loaded (missing file, bad config, shape mismatch): exit 2. */
export class ModelLoadError extends CoreError {
  constructor(message: string, opts: SubOptions = {}) {
    super(message, { code: "MODEL_LOAD", exitCode: 2, ...opts });
  }
}

/** A malformed or hostile safetensors file; the message names the file and the tensor: exit 2. */
export class SafetensorsFormatError extends CoreError {
  constructor(message: string, opts: SubOptions = {}) {
    super(message, { code: "SAFETENSORS_FORMAT", exitCode: 2, ...opts });
  }
}

/** Tokenizer files missing or unusable: exit 2. */
export class TokenizerError extends CoreError {
  constructor(message: string, opts: SubOptions = {}) {
    super(message, { code: "TOKENIZER", exitCode: 2, ...opts });
  }
}

/** A tfjs backend that cannot start, or a model that does not fit in it: exit 3. */
export class BackendError extends CoreError {
  constructor(message: string, opts: SubOptions & { code?: ErrorCode } = {}) {
    super(message, { code: opts.code ?? "BACKEND", exitCode: 3, hint: opts.hint, cause: opts.cause });
  }
}

/** Anything that went wrong at run time that is not the user's input: exit 3. */
export class RuntimeFailure extends CoreError {
  constructor(message: string, opts: SubOptions = {}) {
    super(message, { code: "RUNTIME", exitCode: 3, ...opts });
  }
}

/** A bug of ours: exit 4, the CLI prints the stack. */
export class InternalError extends CoreError {
  constructor(message: string, opts: SubOptions = {}) {
    super(message, { code: "INTERNAL", exitCode: 4, ...opts });
  }
}
