/** `@razorkv/core/testing`: helpers for test files only (they import vitest, which the library never loads). */
export { registerMissing, SHARED_DIR, sharedDataMissing } from "./testing/required.js";
