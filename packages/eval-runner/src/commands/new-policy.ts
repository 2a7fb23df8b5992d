/**
 * `razorkv new-policy <name>`: a new policy package from templates/policy/, ready to build and test. The registry
 * finds it by name from then on (core's registry scans the workspace), so nothing outside its folder changes.
 */
import { cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { findWorkspaceRoot, RazorkvError } from "@razorkv/core";

export interface ScaffoldOptions {
  /** Short name: lowercase letters, digits and dashes, e.g. "knorm". The package is `<scope>/policy-<name>`. */
  readonly name: string;
  /** The pnpm workspace the package goes into (its `packages/` folder). */
  readonly workspaceRoot: string;
  /** Default "@razorkv". */
  readonly scope?: string;
  /** Default: the workspace's templates/policy, else the one beside this module's workspace. */
  readonly templateDir?: string;
}

export interface ScaffoldResult {
  readonly packageName: string;
  readonly dir: string;
  readonly files: string[];
}

export function scaffoldPolicy(options: ScaffoldOptions): ScaffoldResult {
  const { name, workspaceRoot } = options;
  if (!/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(name)) {
    throw new RazorkvError(`new-policy: the name must be lowercase letters, digits and single dashes, starting with a letter (e.g. "knorm"); got "${name}"`);
  }
  const scope = options.scope ?? "@razorkv";
  if (!/^@[a-z0-9][a-z0-9._-]*$/.test(scope)) throw new RazorkvError(`new-policy: --scope must look like "@name", got "${scope}"`);
  const packageName = `${scope}/policy-${name}`;
  const dir = join(workspaceRoot, "packages", `policy-${name}`);
  if (existsSync(dir)) throw new RazorkvError(`new-policy: ${dir} already exists`);
  const template = options.templateDir ?? templateDirFor(workspaceRoot);
  cpSync(template, dir, { recursive: true, filter: (src) => !/(^|\/)(node_modules|dist)(\/|$)/.test(relative(template, src)) });
  const files = listFiles(dir);
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    writeFileSync(file, text.replaceAll("__PACKAGE__", packageName).replaceAll("__NAME__", name));
  }
  return { packageName, dir, files: files.map((f) => relative(dir, f)) };
}

function templateDirFor(workspaceRoot: string): string {
  const candidates = [
    join(workspaceRoot, "templates", "policy"),
    // dist/commands/new-policy.js → the workspace this runner was built in
    fileURLToPath(new URL("../../../../templates/policy", import.meta.url)),
  ];
  const found = candidates.find((c) => existsSync(join(c, "package.json")));
  if (!found) throw new RazorkvError(`new-policy: no policy template at ${candidates.join(" or ")}`);
  return found;
}

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

export function newPolicyCommand(): Command {
  return new Command("new-policy")
    .description("create packages/policy-<name> from the policy template: a working, tested policy to edit")
    .argument("<name>", 'short name, e.g. "knorm" (package @razorkv/policy-knorm)')
    .option("--scope <scope>", "npm scope of the package", "@razorkv")
    .action((name: string, opts: { scope: string }) => {
      const root = findWorkspaceRoot(process.cwd());
      if (!root) throw new RazorkvError(`new-policy: no pnpm workspace (pnpm-workspace.yaml) at or above ${process.cwd()}`);
      const made = scaffoldPolicy({ name, workspaceRoot: root, scope: opts.scope });
      const rel = relative(process.cwd(), made.dir) || ".";
      process.stdout.write(
        `created ${made.packageName} in ${rel}: ${made.files.join(", ")}\n` +
          `next: pnpm install && pnpm --filter ${made.packageName} build && pnpm --filter ${made.packageName} test\n` +
          `then edit ${join(rel, "src", "index.ts")} (see docs/adding-a-policy.md) and name "${made.packageName}" in a manifest\n`,
      );
    });
}
