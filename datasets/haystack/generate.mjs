#!/usr/bin/env node
// Writes datasets/haystack/generated-essays.txt from the prose generator in
// packages/eval-runner/src/tasks/prose.ts. Build first (`pnpm run build`, or `npx tsc -p tsconfig.json` in
// packages/core and packages/eval-runner), then run `node datasets/haystack/generate.mjs` from anywhere.
// The output is a pure function of PROSE_SEED and PROSE_CHARS; prose.test.ts checks that the committed file
// still matches, so change the generator and this file together.
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const { generateProse, PROSE_SEED, PROSE_CHARS } = await import("../../packages/eval-runner/dist/tasks/prose.js");
const out = fileURLToPath(new URL("./generated-essays.txt", import.meta.url));
const text = generateProse(PROSE_SEED, PROSE_CHARS);
writeFileSync(out, text);
console.log(`${out}: ${text.length} characters (seed ${PROSE_SEED})`);
