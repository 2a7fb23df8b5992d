import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RazorkvError } from "./errors.js";
import { createPolicy, findWorkspaceRoot, loadPolicy, policyPackageCandidates } from "./registry.js";

/** A policy module in plain JavaScript whose name appears in no source file: generated per run. */
const unique = `zz${process.pid.toString(36)}${Date.now().toString(36)}`;
const moduleText = (name: string) => `
export default {
  name: "${name}",
  description: "test policy",
  params: { keep: { kind: "number", integer: true, min: 1, default: 2, doc: "entries kept" } },
  create(params, context) {
    return { name: "${name}", statsRequest: {}, params, context, compress(full) { return full.clone(); } };
  },
};
`;

function writePackage(dir: string, name: string, options: { built?: boolean; source?: string } = {}): void {
  mkdirSync(join(dir, "dist"), { recursive: true });
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name, type: "module", exports: { ".": { types: "./dist/index.d.ts", default: "./dist/index.js" } } }),
  );
  if (options.built !== false) writeFileSync(join(dir, "dist", "index.js"), options.source ?? moduleText(name));
}

const root = mkdtempSync(join(tmpdir(), "razorkv-registry-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("policy registry", () => {
  const workspace = join(root, "workspace");
  mkdirSync(join(workspace, "packages", "deep", "er"), { recursive: true });
  writeFileSync(join(workspace, "pnpm-workspace.yaml"), 'packages:\n  - "packages/*"   # all of them\nonlyBuiltDependencies:\n  - esbuild\n');
  writePackage(join(workspace, "packages", `policy-${unique}`), `@someone/policy-${unique}`);
  writePackage(join(workspace, "packages", "short"), `policy-short${unique}`);
  writePackage(join(workspace, "packages", "unbuilt"), `policy-unbuilt${unique}`, { built: false });
  writePackage(join(workspace, "packages", "wrong"), `policy-wrong${unique}`, { source: "export const notAPolicy = 1;\n" });

  it("finds a workspace package that nothing links or names, from anywhere inside the workspace", async () => {
    const loaded = await loadPolicy(`@someone/policy-${unique}`, { cwd: join(workspace, "packages", "deep", "er") });
    expect(loaded.packageName).toBe(`@someone/policy-${unique}`);
    expect(loaded.definition.name).toBe(`@someone/policy-${unique}`);
    expect(findWorkspaceRoot(join(workspace, "packages", "deep"))).toBe(workspace);
  });

  it("accepts a short name for policy-<name> packages", async () => {
    expect(policyPackageCandidates("snapkv")).toEqual(["snapkv", "@razorkv/policy-snapkv", "policy-snapkv"]);
    const loaded = await loadPolicy(`short${unique}`, { cwd: workspace });
    expect(loaded.packageName).toBe(`policy-short${unique}`);
  });

  it("resolves an installed package through node_modules from the working directory", async () => {
    const project = join(root, "project");
    writePackage(join(project, "node_modules", `policy-installed${unique}`), `policy-installed${unique}`);
    const loaded = await loadPolicy(`policy-installed${unique}`, { cwd: project });
    expect(loaded.entry).toContain(join("node_modules", `policy-installed${unique}`));
  });

  it("validates params before create, naming the package and the field", async () => {
    const policy = (await createPolicy(`@someone/policy-${unique}`, { keep: 5 }, { cwd: workspace, context: { modelRef: "m" } })) as unknown as {
      params: unknown;
      context: unknown;
    };
    expect(policy.params).toEqual({ keep: 5 });
    expect(policy.context).toEqual({ modelRef: "m" });
    await expect(createPolicy(`@someone/policy-${unique}`, { keep: 0 }, { cwd: workspace })).rejects.toThrow(
      `@someone/policy-${unique}: params.keep: expected an integer ≥ 1, got 0`,
    );
    await expect(createPolicy(`@someone/policy-${unique}`, { kep: 1 }, { cwd: workspace })).rejects.toThrow(/unknown parameter "kep"/);
  });

  it("says clearly when a package is missing, unbuilt, or exports no policy", async () => {
    await expect(loadPolicy(`nothing${unique}`, { cwd: workspace })).rejects.toThrow(RazorkvError);
    await expect(loadPolicy(`nothing${unique}`, { cwd: workspace })).rejects.toThrow(/no policy package named .*new-policy/);
    await expect(loadPolicy(`policy-unbuilt${unique}`, { cwd: workspace })).rejects.toThrow(/is not built: .*dist\/index\.js does not exist/);
    await expect(loadPolicy(`policy-wrong${unique}`, { cwd: workspace })).rejects.toThrow(/does not export a policy definition/);
  });
});
