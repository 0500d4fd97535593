// bedside's errors: every failure a caller sees is a BedsideError with a stable `code` (the
// engine's codes come from Rust's `BedsideError::code`; the package adds its own). ERROR_CODES
// lists them all: bedside.d.ts's ErrorCode and the demo page's messages are checked against it.

/** Errors thrown by bedside carry a stable `code`. */
export class BedsideError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = "BedsideError";
    this.code = code;
  }
}

/** Every code a BedsideError can carry. */
export const ERROR_CODES = Object.freeze([
  // the engine's (src/error.rs)
  "RECORD_JSON",
  "RECORD_INVALID",
  "RECORD_FHIR",
  "BUNDLE_INVALID",
  "BUNDLE_HASH_MISMATCH",
  "BUNDLE_INCOMPATIBLE",
  "BACKEND_FAILED",
  "ABORTED",
  // the package's
  "BUNDLE_FETCH",
  "WEBGPU_UNAVAILABLE",
  "WEBGPU_LOST",
  "WASM_LOAD",
  "WASM_PANIC",
  "BAD_OPTION",
  "DISPOSED",
  "WORKER_FAILED",
  "INTERNAL",
  // the SMART on FHIR client's (smart.js)
  "SMART_LAUNCH",
  "FHIR_UNAUTHORIZED",
  "FHIR_FORBIDDEN",
  "FHIR_SERVER",
  "FHIR_EMPTY",
]);

/** Throws `ABORTED` where `signal` (an AbortSignal, or undefined) has aborted. */
export function checkSignal(signal, what) {
  if (signal?.aborted) {
    throw new BedsideError("ABORTED", `${what} stopped by the caller: ${signal.reason?.message ?? signal.reason ?? "aborted"}`, { cause: signal.reason });
  }
}

/** Any error as a BedsideError: an abort as `ABORTED`, the engine's errors with their code. */
export function toBedsideError(error, fallbackCode = "INTERNAL") {
  if (error instanceof BedsideError) return error;
  if (error?.name === "AbortError" || error?.name === "TimeoutError") {
    return new BedsideError("ABORTED", `stopped by the caller: ${error.message}`, { cause: error });
  }
  if (error && typeof error === "object" && typeof error.code === "string") {
    return new BedsideError(error.code, error.message, { cause: error });
  }
  return new BedsideError(fallbackCode, String(error?.message ?? error), { cause: error });
}
