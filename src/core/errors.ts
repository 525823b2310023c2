/**
 * The one error type users see. `message` says what was wrong; `hint` says what to do about it.
 * The CLI prints both without a stack trace (set SKETCHGPU_DEBUG=1 for the stack).
 */
export type ErrorCode =
  | 'NO_ADAPTER'
  | 'DEVICE_LOST'
  | 'MISSING_FEATURE'
  | 'BAD_IMAGE'
  | 'EMPTY_SKETCH'
  | 'NOT_A_CHECKPOINT'
  | 'UNSAFE_PICKLE'
  | 'BAD_WEIGHTS'
  | 'BAD_NPY'
  | 'BAD_INDEX'
  | 'INDEX_MISMATCH'
  | 'EMPTY_GALLERY'
  | 'EXISTS'
  | 'INTERRUPTED'
  | 'BAD_ARGUMENT'
  | 'IO'
  | 'BUSY'
  | 'NON_FINITE';

export class SketchError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  /** `hint` is required: every refusal tells the user what to do next (docs/reliability.md). */
  constructor(code: ErrorCode, message: string, hint: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SketchError';
    this.code = code;
    this.hint = hint;
  }
}

export function isSketchError(e: unknown): e is SketchError {
  return e instanceof SketchError;
}

/** The hint of an error that only a wrong call of the library API can cause (never user input through the CLI). */
export const API_MISUSE_HINT = 'This is a programming error in the caller of the library API; see its documentation.';
