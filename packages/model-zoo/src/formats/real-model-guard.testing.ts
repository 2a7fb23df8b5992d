/** Test-only (excluded from the build): the guard every describe block that needs the real model starts with. */
import { registerMissing } from "@razorkv/core/testing";

/**
 * When the real model is absent, registers why inside the current describe block (a failing test under CI, a skip
 * that says so elsewhere: registerMissing) and returns true, so the block stops there.
 */
export function realModelMissing(real: { readonly path: string } | { readonly missing: string }): real is { readonly missing: string } {
  if (!("missing" in real)) return false;
  registerMissing("SmolLM2-135M-Instruct in the hub cache", real.missing);
  return true;
}
