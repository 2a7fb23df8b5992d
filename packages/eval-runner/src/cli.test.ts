/** The CLI's failure modes as a user meets them: one line on stderr naming the problem, a non-zero exit. */
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync, openSync, readSync, closeSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { registerMissing, SHARED_DIR } from "@razorkv/core/testing";
import { resolveModelRef } from "@razorkv/model-zoo";

const cli = fileURLToPath(new URL("../dist/cli.js", import.meta.url));

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

function expectOneLineError(result: { code: number; stderr: string }, pattern: RegExp): void {
  expect(result.code).not.toBe(0);
  const lines = result.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^razorkv: /);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

const realModel = await resolveModelRef("smollm2-135m-instruct", { offline: true }).catch((error: Error) => error);

describe("razorkv CLI on the real model", () => {
  if (realModel instanceof Error) return registerMissing("SmolLM2-135M-Instruct in the hub cache", realModel.message);
  it("generate answers the capital of France with Paris", async () => {
    const r = await run(["generate", "--model", "smollm2-135m-instruct", "--chat", "--prompt", "What is the capital of France?", "--max-new-tokens", "16"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Paris/);
  }, 120_000);

  it("ppl of the first 512 essay tokens agrees with the transformers reference within 1%", async () => {
    const fixture = JSON.parse(readFileSync(new URL("../../model-zoo/test/fixtures/logprobs-reference.json", import.meta.url), "utf8"));
    const essay = join(SHARED_DIR, "data", "paul-graham-essays", "avg.txt");
    const r = await run(["ppl", "--model", "smollm2-135m-instruct", "--file", essay, "--max-tokens", "512"]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { tokens: number; nll: number; ppl: number };
    expect(out.tokens).toBe(512);
    expect(Math.abs(out.ppl - fixture.ppl.ppl) / fixture.ppl.ppl).toBeLessThan(0.01);
  }, 120_000);

  it("a truncated GGUF names the file and the tensor past the end", async () => {
    const head = Buffer.alloc(40_000_000);
    const fd = openSync(realModel.path, "r");
    readSync(fd, head, 0, head.length, 0);
    closeSync(fd);
    const broken = join(mkdtempSync(join(tmpdir(), "razorkv-cli-")), "broken.gguf");
    writeFileSync(broken, head);
    expectOneLineError(await run(["generate", "--model", broken, "--prompt", "hi"]), /broken\.gguf: truncated: tensor \S+ needs bytes up to \d+ but the file has 40000000/);
  }, 60_000);
});

describe("razorkv CLI errors", () => {
  const dir = mkdtempSync(join(tmpdir(), "razorkv-cli-"));

  it("an unknown alias lists the accepted forms and the known aliases", async () => {
    expectOneLineError(await run(["generate", "--model", "smollm9", "--prompt", "hi"]), /smollm9.*smollm2-135m-instruct/);
  });

  it("a model missing from the cache says where it looked and how to provide it", async () => {
    const r = await run(["generate", "--model", "smollm2-135m-instruct", "--prompt", "hi"], {
      HF_HUB_CACHE: join(dir, "empty-cache"), HF_HUB_OFFLINE: "1",
    });
    expectOneLineError(r, /empty-cache.*seed-hf-cache/);
  });

  it("a bad flag value is refused before any model loads", async () => {
    const r = await run(["ppl", "--model", "smollm2-135m-instruct", "--file", "x.txt", "--max-tokens", "-3"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--max-tokens expects a positive integer, got "-3"/);
  });
});
