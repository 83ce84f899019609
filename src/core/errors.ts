/**
 * Typed errors. Every message says what was expected and what came, on one line, so the CLI can
 * print it as is.
 */
export class GlasswingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The input tensor has the wrong rank, shape, channel count, range, or holds NaN/Inf. */
export class InvalidInputError extends GlasswingError {}

/** A target class index is out of range or the target spec is malformed. */
export class TargetError extends GlasswingError {}

/** A method name is not registered. */
export class UnknownMethodError extends GlasswingError {}

/** A model contains a layer type Glasswing (or the requested method) does not support. */
export class UnsupportedLayerError extends GlasswingError {}

/** A model file or folder is missing, unreadable or corrupt. */
export class ModelLoadError extends GlasswingError {}

/** An image file is missing, unreadable or corrupt. */
export class ImageLoadError extends GlasswingError {}

/** An option passed to a method or command is invalid. */
export class OptionError extends GlasswingError {}

/** A data bundle (conformance fixtures, datasets) is missing or malformed. */
export class DataError extends GlasswingError {}

/**
 * A call cannot fit even one sample in the memory budget (per-sample need and budget in the
 * message). Raised before the method's work starts; raise the budget (setMemoryBudget,
 * GLASSWING_MEMORY_BUDGET, the call's memoryBudget) or use smaller inputs.
 */
export class MemoryBudgetError extends GlasswingError {
  constructor(
    message: string,
    /** Bytes one sample needs for this kind of evaluation. */
    readonly perSampleBytes: number,
    /** The budget in bytes that was in force. */
    readonly budgetBytes: number,
  ) {
    super(message);
  }
}

/**
 * The backend failed inside this call (a wasm abort: out of memory, out-of-bounds access, …) and was
 * re-initialised, with every tensor carried over and every classifier's weights restored. Only this
 * call failed: the next one runs on a healthy backend; retry with a smaller memory budget.
 */
export class BackendResetError extends GlasswingError {
  constructor(
    message: string,
    /** The error the backend raised. */
    readonly causeError: unknown,
  ) {
    super(message);
  }
}
