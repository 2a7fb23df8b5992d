/**
 * Test-only (`@razorkv/core/testing`): for tests that need what a machine may lack (the seeded model, ../shared/data).
 * Outside CI they skip and say why; under CI, where .ci/run provides all of it, an absence is a defect, so the block
 * fails with the reason instead of skipping silently.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { it } from "vitest";

/** ../shared beside the repository (RAZORKV_SHARED overrides): the evaluation data, the original tokenizer and config. */
export const SHARED_DIR = process.env["RAZORKV_SHARED"] ?? resolve(fileURLToPath(import.meta.url), "../../../../../../shared");

/**
 * Registers, in the current describe block, that `what` is missing and why: a failing test when CI is set, a skipped
 * test naming the reason elsewhere. The block returns right after: `if (missing) return registerMissing(what, missing)`.
 */
export function registerMissing(what: string, why: string): void {
  if (process.env["CI"]) {
    it(`${what}: present (required when CI is set)`, () => {
      throw new Error(why);
    });
  } else {
    console.warn(`skipping tests that need ${what}: ${why}`);
    it.skip(`needs ${what} (${why})`, () => {});
  }
}

/** null when `path` exists, else what is wrong and where the data comes from. */
export function sharedDataMissing(path: string): string | null {
  return existsSync(path) ? null : `${path} does not exist; the evaluation data lives in ../shared/data beside the repository (RAZORKV_SHARED overrides)`;
}
