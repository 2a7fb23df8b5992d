import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { assertRealizedBudget, findWorkspaceRoot, instantiatePolicy, kvBudget, loadPolicy, randomPrefill, RazorkvError } from "@razorkv/core";
import { afterAll, describe, expect, it } from "vitest";
import { scaffoldPolicy } from "./new-policy.js";

const here = dirname(fileURLToPath(import.meta.url));
const repo = findWorkspaceRoot(here)!;
const require = createRequire(join(repo, "package.json"));

/**
 * A throwaway pnpm workspace beside the real one: the new package, plus what `pnpm install` would link for it
 * (core, the compiler's node types, vitest) as symlinks, so the test needs no network and no install.
 */
function scratchWorkspace(): string {
  const root = mkdtempSync(join(tmpdir(), "razorkv-new-policy-"));
  writeFileSync(join(root, "pnpm-workspace.yaml"), 'packages:\n  - "packages/*"\n');
  copyFileSync(join(repo, "tsconfig.base.json"), join(root, "tsconfig.base.json"));
  mkdirSync(join(root, "packages"));
  mkdirSync(join(root, "node_modules", "@razorkv"), { recursive: true });
  mkdirSync(join(root, "node_modules", "@types"), { recursive: true });
  symlinkSync(join(repo, "packages", "core"), join(root, "node_modules", "@razorkv", "core"), "dir");
  symlinkSync(dirname(require.resolve("@types/node/package.json")), join(root, "node_modules", "@types", "node"), "dir");
  symlinkSync(dirname(require.resolve("vitest/package.json")), join(root, "node_modules", "vitest"), "dir");
  return root;
}

describe("new-policy", () => {
  const root = scratchWorkspace();
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  // a name no source file mentions, so only the registry's search can find the package
  const name = `scratch${process.pid.toString(36)}${Date.now().toString(36)}`;

  it("yields a package that builds, passes its own tests, and that the registry finds by name", () => {
    const made = scaffoldPolicy({ name, workspaceRoot: root, templateDir: join(repo, "templates", "policy") });
    expect(made.packageName).toBe(`@razorkv/policy-${name}`);
    expect(made.files.sort()).toEqual(["README.md", "package.json", "src/index.test.ts", "src/index.ts", "tsconfig.json"]);
    const manifest = JSON.parse(readFileSync(join(made.dir, "package.json"), "utf8"));
    expect(manifest.name).toBe(made.packageName);
    expect(readFileSync(join(made.dir, "src", "index.ts"), "utf8")).not.toContain("__NAME__");

    execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: made.dir, stdio: "pipe" });
    expect(existsSync(join(made.dir, "dist", "index.js"))).toBe(true);
    const vitest = join(dirname(require.resolve("vitest/package.json")), "vitest.mjs");
    const run = execFileSync(process.execPath, [vitest, "run", "--reporter=dot"], { cwd: made.dir, stdio: "pipe", encoding: "utf8" });
    expect(run).toMatch(/3 passed/);
  }, 60_000);

  it("is found by package name and by short name from anywhere in its workspace, and works", async () => {
    const loaded = await loadPolicy(`@razorkv/policy-${name}`, { cwd: join(root, "packages") });
    expect(loaded.entry).toBe(resolve(root, "packages", `policy-${name}`, "dist", "index.js"));
    const short = await loadPolicy(name, { cwd: root });
    expect(short.packageName).toBe(`@razorkv/policy-${name}`);
    const policy = instantiatePolicy(loaded.definition, { window: 4 }, {}, loaded.packageName);
    const { cache, stats } = randomPrefill({ numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, length: 77 });
    const out = policy.compress(cache, stats, kvBudget(0.4));
    expect(() => assertRealizedBudget(out, 0.4)).not.toThrow();
    expect(() => instantiatePolicy(loaded.definition, { windows: 4 }, {}, loaded.packageName)).toThrow(
      `@razorkv/policy-${name}: unknown parameter "windows"; known parameters: window`,
    );
  });

  it("refuses a bad name and an existing package", () => {
    expect(() => scaffoldPolicy({ name: "Bad_Name", workspaceRoot: root })).toThrow(RazorkvError);
    expect(() => scaffoldPolicy({ name, workspaceRoot: root, templateDir: join(repo, "templates", "policy") })).toThrow(/already exists/);
  });
});
