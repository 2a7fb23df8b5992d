// GPU agreement through the binding. Skipped where no GPU answers (CI) unless RAZORKV_REQUIRE_GPU=1, which
// `pnpm test:gpu` sets so that a missing device fails instead of passing silently.
import { describe, expect, it } from "vitest";
import { cudaStatus } from "./index.js";
import { gpuChecks } from "./testing/checks.js";

const status = cudaStatus();
const required = process.env.RAZORKV_REQUIRE_GPU === "1";

describe.skipIf(!status.available && !required)(`CUDA kernels on ${status.name ?? "no GPU"}`, () => {
  it("agree with the CPU reference on random ragged layers (fp16 ≤ 1e-3, bf16 ≤ 1e-2)", () => {
    expect(status, status.reason).toMatchObject({ available: true });
    const results = gpuChecks();
    for (const r of results) expect(r, r.name).toMatchObject({ ok: true });
  });
});
