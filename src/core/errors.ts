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
