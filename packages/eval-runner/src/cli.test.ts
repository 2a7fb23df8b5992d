/** The CLI's failure modes as a user meets them: one line on stderr naming the problem, a non-zero exit. */
import { execFile } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, openSync, readSync, closeSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { registerMissing, SHARED_DIR } from "@razorkv/core/testing";
import { resolveModelRef } from "@razorkv/model-zoo";
import { userArgs } from "./commands/parse.js";
import { checkOwnFolder, folderExperiment } from "./commands/run.js";
import { checkChromium, checkMemory, checkNode, checkPrefillProducts, formatCheck, sampleBytes } from "./commands/doctor.js";

const cli = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const repo = fileURLToPath(new URL("../../../", import.meta.url));

function run(args: string[], env: NodeJS.ProcessEnv = {}, cwd = repo): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { cwd, env: { ...process.env, ...env } }, (error, stdout, stderr) => {
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
    // one JSON line, the result
    expect(r.stdout.split("\n")).toHaveLength(2);
    const out = JSON.parse(r.stdout) as { model: string; promptTokens: number; newTokens: number; text: string };
    expect(out.text).toMatch(/Paris/);
    expect(out.newTokens).toBeLessThanOrEqual(16);
  }, 120_000);

  it("ppl of the first 512 essay tokens agrees with the transformers reference within 1%", async () => {
    const fixture = JSON.parse(readFileSync(new URL("../../model-zoo/test/fixtures/logprobs-reference.json", import.meta.url), "utf8"));
    const essay = join(SHARED_DIR, "data", "paul-graham-essays", "avg.txt");
    const r = await run(["ppl", "--model", "smollm2-135m-instruct", "--file", essay, "--max-tokens", "512"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout.split("\n")).toHaveLength(2);
    const out = JSON.parse(r.stdout) as { tokens: number; nll: number; ppl: number; prefillProducts: string };
    expect(out.tokens).toBe(512);
    expect(out.prefillProducts).toBe("f32");
    expect(Math.abs(out.ppl - fixture.ppl.ppl) / fixture.ppl.ppl).toBeLessThan(0.01);
    // llama.cpp-style 8-bit activations: another number, still within 1% of the f32 model's perplexity
    const int8 = await run(["ppl", "--model", "smollm2-135m-instruct", "--file", essay, "--max-tokens", "512", "--prefill-products", "int8"]);
    expect(int8.code).toBe(0);
    const q = JSON.parse(int8.stdout) as { nll: number; ppl: number; prefillProducts: string };
    expect(q.prefillProducts).toBe("int8");
    expect(q.nll).not.toBe(out.nll);
    expect(Math.abs(q.ppl - out.ppl) / out.ppl).toBeLessThan(0.01);
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
    expectOneLineError(r, /--max-tokens expects an integer ≥ 2, got "-3"/);
  });

  // every nonsensical option value: one line naming the option, what it expects and what it got
  const model = ["--model", "smollm2-135m-instruct"];
  const refusals: [string[], RegExp][] = [
    [["generate", ...model, "--prompt", ""], /^razorkv: --prompt expects a non-empty prompt, got ""/],
    [["generate", ...model, "--prompt", "hi", "--max-new-tokens", "0"], /--max-new-tokens expects a positive integer, got "0"/],
    [["generate", ...model, "--prompt", "hi", "--max-new-tokens", "ten"], /--max-new-tokens expects a positive integer, got "ten"/],
    [["generate", ...model, "--prompt", "hi", "--max-new-tokens", "1.5"], /--max-new-tokens expects a positive integer, got "1.5"/],
    [["ppl", ...model, "--file", "x.txt", "--max-tokens", "1"], /^razorkv: --max-tokens expects an integer ≥ 2, got "1"/],
    [["ppl", ...model, "--file", "x.txt", "--max-tokens", "0"], /--max-tokens expects an integer ≥ 2, got "0"/],
    [["ppl", ...model, "--file", ""], /--file expects a path, got ""/],
    [["ppl", "--model", "smollm9", "--file", "x.txt"], /--model: model reference "smollm9": not an alias.*smollm2-135m-instruct/],
    [["ppl", ...model, "--file", "/no/such/file.txt"], /--file \/no\/such\/file\.txt: cannot read the text file \(ENOENT\)/],
    [["ppl", ...model], /required option '--model <ref>' not specified|required option '--file <path>' not specified/],
    [["ppl", ...model, "--file", "x.txt", "--max-tokns", "5"], /unknown option '--max-tokns'.*--max-tokens/],
    [["ppl", ...model, "--file", "x.txt", "--prefill-products", "fp8"], /^razorkv: --prefill-products expects one of f32, int8, got "fp8"/],
    [["calibrate", ...model, "--policy", "razor", "--params", "{x"], /--params expects a JSON object, got "\{x"/],
    [["calibrate", ...model, "--params", "{}"], /^razorkv: calibrate: --params needs a --policy it applies to$/],
    [["calibrate", ...model, "--policy", "razor", "--params", '{"calibration":{"seed":-1}}'], /^razorkv: --policy razor: @razorkv\/policy-razor: params\.calibration: seed: expected an integer ≥ 0, got -1$/],
    [["calibrate", ...model, "--policy", "razor", "--params", '{"calibration":{"blockLength":5000}}'], /^razorkv: --policy razor: calibration: blockLength: expected a block whose 4 copies \+ BOS fit the model's context of 8192 \(K ≤ 2047\), got 5000$/],
    [["calibrate", ...model, "--policy", "razor", "--params", '{"inductionFraction":2}'], /params\.inductionFraction: .*got 2/],
    [["run", "no-such.yaml"], /^razorkv: no-such\.yaml: no such manifest$/],
    [["run", "bench/default-slice.yaml", "--out", ""], /--out expects a folder, got ""/],
    [["run", "a.yaml", "b.yaml"], /too many arguments for 'run'/],
    [["doctor", "--model", "smollm9"], /--model: model reference "smollm9"/],
  ];
  for (const [args, pattern] of refusals) {
    it(`refuses ${args.join(" ")}`, async () => expectOneLineError(await run(args), pattern));
  }

  it("a manifest with a bad field fails within 5 s, naming the manifest, line and field, also after a `--`", async () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "name: bad\nmodels: [smollm2-135m-instruct]\nbudgets: [0.5]\npolicies: [{name: full}]\ntasks: [{type: passkey, modes: [sideways]}]\n");
    const started = Date.now();
    const r = await run(["run", "--", bad, "--out", join(dir, "bad-out")]);
    expect(Date.now() - started).toBeLessThan(5000);
    expectOneLineError(r, /bad\.yaml:5: tasks\[0\]\.modes\[0\]: expected one of "query-agnostic", "query-aware"/);
  });
});

describe("arguments as npm and pnpm pass them", () => {
  const commands = ["run", "ppl"];
  it("drop the `--` pnpm passes on, at the start or after the command", () => {
    expect(userArgs(["--", "run", "my.yaml"], commands)).toEqual(["run", "my.yaml"]);
    expect(userArgs(["run", "--", "my.yaml", "--out", "D"], commands)).toEqual(["run", "my.yaml", "--out", "D"]);
    expect(userArgs(["run", "my.yaml", "--out", "D"], commands)).toEqual(["run", "my.yaml", "--out", "D"]);
    // anywhere else it keeps commander's meaning
    expect(userArgs(["ppl", "--file", "x", "--", "y"], commands)).toEqual(["ppl", "--file", "x", "--", "y"]);
  });

  it("npm run experiment without `--`: the options npm took as its config are put back", async () => {
    const bootstrap = (await import(join(repo, "tools", "bootstrap.mjs"))) as {
      npmExperimentArgs(args: string[], env: Record<string, string | undefined>): string[];
    };
    const npm = { npm_config_user_agent: "npm/11.19.1 node/v20.20.2 linux x64" };
    // npm run experiment my.yaml --out DIR
    expect(bootstrap.npmExperimentArgs(["my.yaml", "DIR"], { ...npm, npm_config_out: "true" })).toEqual(["my.yaml", "--out", "DIR"]);
    // npm run experiment --out DIR my.yaml
    expect(bootstrap.npmExperimentArgs(["DIR", "my.yaml"], { ...npm, npm_config_out: "true" })).toEqual(["my.yaml", "--out", "DIR"]);
    // npm run experiment my.yaml --out=DIR --no-report --dry-run --no-share-prefill
    expect(
      bootstrap.npmExperimentArgs(["my.yaml"], { ...npm, npm_config_out: "DIR", npm_config_report: "", npm_config_dry_run: "true", npm_config_share_prefill: "" }),
    ).toEqual(["my.yaml", "--out", "DIR", "--dry-run", "--no-share-prefill", "--no-report"]);
    // npm run experiment -- my.yaml --out DIR, and pnpm: nothing to put back
    expect(bootstrap.npmExperimentArgs(["my.yaml", "--out", "DIR"], npm)).toEqual(["my.yaml", "--out", "DIR"]);
    expect(bootstrap.npmExperimentArgs(["my.yaml", "DIR"], { npm_config_user_agent: "pnpm/10.34.9", npm_config_out: "true" })).toEqual(["my.yaml", "DIR"]);
  });

  it("razorkv --help and every command's help list every option with its default", async () => {
    const r = await run(["--help"]);
    expect(r.code).toBe(0);
    for (const command of ["generate", "ppl", "calibrate", "new-policy", "run", "report", "doctor"]) {
      const own = await run([command, "--help"]);
      expect(r.stdout).toContain(own.stdout.replace(/^Usage: /, "").trim());
      const options = own.stdout.split("Options:")[1].split(/\n(?=  -)/).filter((o) => o.trim() !== "" && !o.includes("--help"));
      expect(options.length).toBeGreaterThan(0);
      for (const option of options) expect(option.replace(/\s+/g, " "), `${command}: ${option.trim()}`).toMatch(/\(default: |\(required/);
    }
  });
});

describe("a results folder belongs to one manifest", () => {
  const dir = mkdtempSync(join(tmpdir(), "razorkv-cli-own-"));

  it("is refused to another manifest, naming both and suggesting --out", async () => {
    const taken = join(dir, "taken");
    mkdirSync(taken);
    writeFileSync(join(taken, "manifest.yaml"), "name: other-sweep\nseed: 1\n");
    const r = await run(["run", "--", "bench/default-slice.yaml", "--out", taken]);
    expectOneLineError(r, /bench\/default-slice\.yaml \(name: default-slice\).*holds the results of manifest "other-sweep".*manifest\.yaml.*--out/);
  });

  it("is the same manifest's, edited or not, when the name matches; a folder without a manifest is anyone's", () => {
    const same = join(dir, "same");
    mkdirSync(same);
    writeFileSync(join(same, "manifest.yaml"), "name: default-slice\nseed: 7\nbudgets: [0.9]\n");
    expect(() => checkOwnFolder(same, "default-slice", "bench/default-slice.yaml", false)).not.toThrow();
    expect(() => checkOwnFolder(join(dir, "fresh"), "default-slice", "bench/default-slice.yaml", false)).not.toThrow();
  });

  it("falls back on the first row's experiment when the manifest copy is missing", () => {
    const rowsOnly = join(dir, "rows-only");
    mkdirSync(rowsOnly);
    writeFileSync(join(rowsOnly, "results.jsonl"), JSON.stringify({ experiment: "old-sweep", key: "k" }) + "\n");
    expect(folderExperiment(rowsOnly)?.name).toBe("old-sweep");
    expect(() => checkOwnFolder(rowsOnly, "new-sweep", "new.yaml", true)).toThrow(/new\.yaml \(name: new-sweep\) would run into .*rows-only \(--out\).*"old-sweep"/);
  });
});

describe("razorkv doctor", () => {
  it("says ok or what is wrong and the command that fixes it, one line per check", () => {
    expect(formatCheck(checkNode("20.19.0"))).toBe("ok      node: v20.19.0 (needs 20 or newer)");
    expect(formatCheck(checkNode("18.20.4"))).toMatch(/^PROBLEM node: v18\.20\.4, needs 20 or newer — fix: install Node 20/);
    expect(formatCheck(checkChromium("/no/chromium"))).toMatch(/^warn    chromium: no \/no\/chromium.* — fix: sudo apt-get install chromium/);
    expect(checkMemory(2 * 1024 ** 3, 1024 ** 3, "x").level).toBe("problem");
    expect(checkMemory(1024 ** 3, 2 * 1024 ** 3, "x").level).toBe("ok");
  });

  it("a manifest asking for int8 prefills: a problem without the native kernels, a warning without AVX-512 VNNI", () => {
    const kernels = (native: { int8GemmVnni(): boolean } | null) =>
      ({ loadKernels: () => native, kernelsUnavailableReason: () => "off", kernelsDisabledByEnv: () => true }) as unknown as Parameters<typeof checkPrefillProducts>[0];
    expect(formatCheck(checkPrefillProducts(kernels(null)))).toMatch(/^PROBLEM int8 prefill: the manifest asks for prefillProducts: int8, which needs the native kernels/);
    expect(formatCheck(checkPrefillProducts(kernels({ int8GemmVnni: () => false })))).toMatch(/^warn    int8 prefill: no AVX-512 VNNI on this CPU/);
    expect(formatCheck(checkPrefillProducts(kernels({ int8GemmVnni: () => true })))).toBe("ok      int8 prefill: 8-bit GEMM on AVX-512 VNNI");
  });

  it("counts the full cache, each cell's copy at its budget, and the prefill's activations", () => {
    const config = { numLayers: 2, numKvHeads: 1, headDim: 4, intermediateSize: 8, hiddenSize: 4 } as Parameters<typeof sampleBytes>[0];
    // K and V: 2 layers × 1 head × 4 dims × 2 × 4 bytes = 64 bytes per token; (1 + 0.5 + 0.5) copies; 10 tokens
    expect(sampleBytes(config, 10, [0.5, 0.5])).toBe(64 * 10 * 2 + 10 * (3 * 8 + 8 * 4) * 4);
  });

  it("fails with the seeding command when the model is not in the cache", async () => {
    const r = await run(["doctor"], { HF_HUB_CACHE: join(mkdtempSync(join(tmpdir(), "razorkv-doctor-")), "empty"), HF_HUB_OFFLINE: "1" });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("");
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^ok      node: v/);
    expect(lines.find((l) => l.includes("model:"))).toMatch(/^PROBLEM model: smollm2-135m-instruct is not in the local cache.* — fix: .*seed-hf-cache$/);
    expect(lines.every((l) => /^(ok     |warn   |PROBLEM) [a-zA-Z ]+: /.test(l))).toBe(true);
  });
});
