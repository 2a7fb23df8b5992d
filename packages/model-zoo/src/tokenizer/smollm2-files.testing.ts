/**
 * Test-only (excluded from the build): the real SmolLM2-135M-Instruct files the tokenizer parity tests read — the
 * GGUF in the local hub cache (seeded by ../shared/bin/seed-hf-cache) and the original tokenizer.json in ../shared.
 */
import { join } from "node:path";
import { SHARED_DIR } from "@razorkv/core/testing";
import { hubSnapshotPath, parseModelRef } from "../resolve.js";

const ref = parseModelRef("smollm2-135m-instruct");
if (ref.kind !== "hf" || ref.file === undefined) throw new Error("the smollm2-135m-instruct alias no longer names a hub GGUF file");

export const SMOLLM2_GGUF = hubSnapshotPath(ref.repo, ref.revision, ref.file);
export const SMOLLM2_TOKENIZER_JSON = join(SHARED_DIR, "models", "smollm2-135m-instruct", "tokenizer.json");
