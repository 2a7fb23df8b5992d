/**
 * The policy registry: a manifest names a policy by package name ("@razorkv/policy-snapkv", or just "snapkv"),
 * and the runner finds it here without a line of its own source naming the package. Resolution, in order:
 *   1. Node's resolution from the working directory (an installed dependency, or a package linked by pnpm);
 *   2. the pnpm workspace around the working directory: the first package listed by pnpm-workspace.yaml whose
 *      package.json has that name — so a package just created under packages/ works before anything links it.
 * A short name `x` (no scope, no slash) also tries `@razorkv/policy-x` and `policy-x`.
 * The package's default export, or its named export `policy`, is a PolicyDefinition.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { RazorkvError } from "./errors.js";
import { parseParams } from "./params.js";
import type { CompressionPolicy, PolicyContext, PolicyDefinition } from "./policy.js";

export interface LoadPolicyOptions {
  /** Where resolution starts (default: process.cwd()). */
  readonly cwd?: string;
}

export interface LoadedPolicy {
  readonly definition: PolicyDefinition;
  /** The package name that matched. */
  readonly packageName: string;
  /** The module file that was imported. */
  readonly entry: string;
}

/** Finds and imports the policy package `name`; a RazorkvError says where it looked when nothing matches. */
export async function loadPolicy(name: string, options: LoadPolicyOptions = {}): Promise<LoadedPolicy> {
  const cwd = resolve(options.cwd ?? process.cwd());
  const candidates = policyPackageCandidates(name);
  let found: { packageName: string; entry: string } | null = null;
  for (const candidate of candidates) {
    const entry = resolveFromDirectory(candidate, cwd);
    if (entry) {
      found = { packageName: candidate, entry };
      break;
    }
  }
  const root = findWorkspaceRoot(cwd);
  if (!found && root) {
    for (const candidate of candidates) {
      const entry = resolveFromWorkspace(candidate, root);
      if (entry) {
        found = { packageName: candidate, entry };
        break;
      }
    }
  }
  if (!found) {
    throw new RazorkvError(
      `no policy package named ${candidates.map((c) => `"${c}"`).join(" or ")}: not resolvable from ${cwd}` +
        (root ? ` and not among the workspace packages of ${root}` : " (and no pnpm workspace around it)") +
        `; create one with \`pnpm razorkv new-policy <name>\``,
    );
  }
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(found.entry).href)) as Record<string, unknown>;
  } catch (error) {
    throw new RazorkvError(`${found.packageName}: cannot import ${found.entry}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const definition = module.default ?? module.policy;
  if (!isPolicyDefinition(definition)) {
    throw new RazorkvError(
      `${found.packageName} (${found.entry}) does not export a policy definition: expected a default export or an export named "policy" ` +
        `with { name, description, params, create } (see docs/adding-a-policy.md)`,
    );
  }
  return { definition, ...found };
}

/** Validates `params` against the definition's schema and creates the policy; errors name `where` and the field. */
export function instantiatePolicy(definition: PolicyDefinition, params: unknown, context: PolicyContext = {}, where = definition.name): CompressionPolicy {
  return definition.create(parseParams(definition.params, params, where), context);
}

/** loadPolicy + instantiatePolicy: what the runner calls for each `policies:` entry of a manifest. */
export async function createPolicy(
  name: string,
  params: unknown,
  options: LoadPolicyOptions & { readonly context?: PolicyContext } = {},
): Promise<CompressionPolicy> {
  const loaded = await loadPolicy(name, options);
  return instantiatePolicy(loaded.definition, params, options.context, loaded.packageName);
}

export function policyPackageCandidates(name: string): string[] {
  if (typeof name !== "string" || name.trim() === "") throw new RazorkvError(`policy: expected a package name, got ${JSON.stringify(name)}`);
  if (name.includes("/") || name.startsWith("policy-")) return [name];
  return [name, `@razorkv/policy-${name}`, `policy-${name}`];
}

/** The nearest directory at or above `from` that holds pnpm-workspace.yaml, or null. */
export function findWorkspaceRoot(from: string): string | null {
  let dir = resolve(from);
  for (;;) {
    if (existsSync(join(dir, "pnpm-workspace.yaml"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/** Directories of the workspace's packages, from pnpm-workspace.yaml's `packages:` list (`dir`, `dir/*` forms). */
export function workspacePackageDirs(root: string): string[] {
  const text = readFileSync(join(root, "pnpm-workspace.yaml"), "utf8");
  const dirs: string[] = [];
  let inPackages = false;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trimEnd();
    if (/^\S/.test(line)) inPackages = /^packages\s*:/.test(line);
    const item = inPackages ? /^\s*-\s*["']?([^"']+)["']?\s*$/.exec(line) : null;
    if (!item || item[1].startsWith("!")) continue;
    const pattern = item[1].replace(/\/+$/, "");
    if (pattern.endsWith("/*") || pattern.endsWith("/**")) {
      const base = join(root, pattern.replace(/\/\*\*?$/, ""));
      if (!existsSync(base)) continue;
      for (const entry of readdirSync(base).sort()) {
        const dir = join(base, entry);
        if (statSync(dir).isDirectory() && existsSync(join(dir, "package.json"))) dirs.push(dir);
      }
    } else if (existsSync(join(root, pattern, "package.json"))) {
      dirs.push(join(root, pattern));
    }
  }
  return dirs;
}

function resolveFromDirectory(packageName: string, cwd: string): string | null {
  try {
    return createRequire(join(cwd, "__razorkv_policy_resolver__.js")).resolve(packageName);
  } catch {
    return null;
  }
}

function resolveFromWorkspace(packageName: string, root: string): string | null {
  for (const dir of workspacePackageDirs(root)) {
    let manifest: { name?: string; main?: string; exports?: unknown };
    try {
      manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    } catch {
      continue;
    }
    if (manifest.name !== packageName) continue;
    const entry = join(dir, packageEntry(manifest));
    if (!existsSync(entry)) {
      throw new RazorkvError(`${packageName} (${dir}) is not built: ${entry} does not exist; run \`pnpm build\` (or tsc in that package)`);
    }
    return entry;
  }
  return null;
}

/** The root entry of a package.json: exports["."] (import or default condition), then main, then index.js. */
function packageEntry(manifest: { main?: string; exports?: unknown }): string {
  const pick = (e: unknown): string | null => {
    if (typeof e === "string") return e;
    if (e && typeof e === "object") {
      const o = e as Record<string, unknown>;
      if ("." in o) return pick(o["."]);
      return pick(o.import) ?? pick(o.default) ?? pick(o.node);
    }
    return null;
  };
  return pick(manifest.exports) ?? manifest.main ?? "index.js";
}

function isPolicyDefinition(value: unknown): value is PolicyDefinition {
  if (!value || typeof value !== "object") return false;
  const v = value as Record<string, unknown>;
  return typeof v.name === "string" && typeof v.create === "function" && !!v.params && typeof v.params === "object";
}
