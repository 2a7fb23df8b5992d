/**
 * Errors raised while turning a model reference into weights. Every message is one line: a researcher reads it in
 * a sweep's log next to hundreds of others, so it names the file (or the reference) first, then what is wrong.
 */

/** Collapses whitespace so an error message stays on one line whatever a library or a file put into it. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

import { RazorkvError } from "@razorkv/core";

/** A model file exists but cannot be used: bad magic, unparsable header, truncated data, unsupported tensor type. */
export class ModelFileError extends RazorkvError {
  override readonly name: string = "ModelFileError";
  /** The file as the caller named it (or as the reference resolved). */
  readonly path: string;
  /** What is wrong, without the path. */
  readonly problem: string;

  constructor(path: string, problem: string, options?: { cause?: unknown }) {
    super(oneLine(`${path}: ${problem}`), options);
    this.path = path;
    this.problem = oneLine(problem);
  }
}

/** A well-formed reference whose file is neither in the local cache nor reachable. */
export class ModelNotFoundError extends RazorkvError {
  override readonly name: string = "ModelNotFoundError";
  readonly ref: string;

  constructor(ref: string, message: string, options?: { cause?: unknown }) {
    super(oneLine(message), options);
    this.ref = ref;
  }
}

/** A reference that is malformed or names an unknown alias. */
export class ModelRefError extends RazorkvError {
  override readonly name: string = "ModelRefError";
  readonly ref: string;

  constructor(ref: string, message: string) {
    super(oneLine(message));
    this.ref = ref;
  }
}
