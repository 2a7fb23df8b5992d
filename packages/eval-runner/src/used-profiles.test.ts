import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mulberry32, RazorkvError } from "@razorkv/core";
import { readProfile, selectRetrievalHeads, writeProfile, type HeadProfile } from "@razorkv/policy-razor";
import { afterAll, describe, expect, it } from "vitest";
import { writeUsedProfile } from "./used-profiles.js";

// SmolLM2-135M's shape (30 layers × 3 KV heads, 9 query heads) with random scores
function randomProfile(): HeadProfile {
  const rand = mulberry32(7);
  const m = () => Array.from({ length: 30 }, () => Array.from({ length: 9 }, () => rand()));
  const scores = { numLayers: 30, numHeads: 9, numKvHeads: 3, echo: m(), induction: m() };
  const params = { blockLength: 10, repeats: 4, seed: 1, tokenRange: [0, 10] as const, bosId: null, inductionFraction: 0.14, echoFraction: 0.01 };
  return { model: "org/model", ...scores, retrieval: selectRetrievalHeads(scores, params), params };
}

const dir = mkdtempSync(join(tmpdir(), "razorkv-used-profiles-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cachedPath = join(dir, "cache", "org_model.json");
const calibrated = randomProfile();
writeProfile(cachedPath, calibrated);
const spec = (label: string, params: Record<string, unknown> = {}) => ({ label, params, where: `m.yaml: policies.${label}` });

describe("writeUsedProfile", () => {
  const out = join(dir, "out");
  const files = {
    razor: writeUsedProfile(out, "org/model", spec("razor"), cachedPath),
    sinks0: writeUsedProfile(out, "org/model", spec("razor-sinks0", { sinks: 0, compensation: false }), cachedPath),
    p40: writeUsedProfile(out, "org/model", spec("razor-p40", { inductionFraction: 0.39, echoFraction: 0.01 }), cachedPath),
    noEcho: writeUsedProfile(out, "org/model", spec("razor-no-echo", { inductionFraction: 0.15, echoFraction: 0 }), cachedPath),
  };

  it("variants that keep the calibrated selection share the model's file, a byte copy of the cache", () => {
    expect(files.razor).toBe(join(out, "profiles", "org_model.json"));
    expect(files.sinks0).toBe(files.razor);
    expect(readFileSync(files.razor)).toEqual(readFileSync(cachedPath));
  });

  it("a variant with other fractions gets <model>@<label>.json with its own heads and fractions, the same scores", () => {
    expect(readdirSync(join(out, "profiles")).sort()).toEqual(["org_model.json", "org_model@razor-no-echo.json", "org_model@razor-p40.json"]);
    const p40 = readProfile(files.p40);
    // 90 KV heads: the top 35 by induction plus the top 1 by echo, which may coincide
    expect(p40.retrieval.length).toBeGreaterThanOrEqual(35);
    expect(p40.retrieval.length).toBeLessThanOrEqual(36);
    expect(p40.retrieval).toEqual(selectRetrievalHeads(calibrated, { inductionFraction: 0.39, echoFraction: 0.01 }));
    expect(p40.params).toMatchObject({ inductionFraction: 0.39, echoFraction: 0.01, blockLength: 10 });
    expect(p40.echo).toEqual(calibrated.echo);
    expect(p40.induction).toEqual(calibrated.induction);
    const noEcho = readProfile(files.noEcho);
    expect(noEcho.retrieval).toEqual(selectRetrievalHeads(calibrated, { inductionFraction: 0.15, echoFraction: 0 }));
    expect(noEcho.retrieval).not.toEqual(calibrated.retrieval);
  });

  it("a bad fraction names the manifest place", () => {
    expect(() => writeUsedProfile(out, "org/model", spec("razor-bad", { inductionFraction: 2 }), cachedPath)).toThrow(RazorkvError);
    expect(() => writeUsedProfile(out, "org/model", spec("razor-bad", { inductionFraction: 2 }), cachedPath)).toThrow(/m\.yaml: policies\.razor-bad.*inductionFraction/);
  });
});
