/**
 * The runner, the report and core never name a policy (DESIGN §1, §3; issue #17): a method is a package under
 * packages/policy-*, and adding one — with a preparation step, a head selection the report draws — touches only its
 * folder and a manifest. This scans their sources (comments, tests and test fixtures aside) for the name of every
 * policy package of the workspace.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const SCANNED = ["packages/core/src", "packages/eval-runner/src", "packages/report/src"];

/** TypeScript source with its comments blanked out; strings, template literals and regular expressions kept. */
function stripComments(source: string): string {
  let out = "";
  let i = 0;
  // whether a "/" here starts a regular expression (after an operator or a keyword) rather than a division
  const regexAllowed = () => {
    const before = out.replace(/\s+$/, "");
    return before === "" || /[(,=:[!&|?{};+\-*%<>~^]$/.test(before) || /\b(return|typeof|case|of|in)$/.test(before);
  };
  while (i < source.length) {
    const c = source[i];
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      while (i < source.length && source[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end < 0 ? source.length : end + 2;
      out += source.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
    } else if (c === '"' || c === "'" || c === "`" || (c === "/" && regexAllowed())) {
      // a literal: copied up to its unescaped closing delimiter (template expressions are scanned as text)
      let j = i + 1;
      let inClass = false;
      while (j < source.length) {
        const d = source[j];
        if (d === "\\") {
          j += 2;
          continue;
        }
        if (c === "/" && d === "[") inClass = true;
        else if (c === "/" && d === "]") inClass = false;
        else if (d === c && !inClass) break;
        else if (c !== "`" && d === "\n") break;
        j++;
      }
      out += source.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The short names of the workspace's policy packages: packages/policy-<name>. */
function policyNames(): string[] {
  return readdirSync(join(root, "packages")).filter((d) => d.startsWith("policy-")).map((d) => d.slice("policy-".length)).sort();
}

/**
 * Where `code` (comments stripped) names a policy: any spelling containing a name that is no ordinary word
 * (RazorAttention, "razor-p5", snapKvScore; "razorkv", the project, is not a policy), and for every name — ordinary words
 * such as "full" included — a string literal that is exactly the name.
 */
function policyNameHits(code: string, names: readonly string[]): string[] {
  const hits: string[] = [];
  const project = code.replace(/razorkv/gi, "");
  for (const name of names) {
    const literal = new RegExp(`(["'\`])${name}\\1`, "g");
    for (const m of code.matchAll(literal)) hits.push(m[0]);
    if (/^(full|none|base|default)$/.test(name)) continue;
    const anywhere = new RegExp(`[A-Za-z0-9_$.@/-]*${name}[A-Za-z0-9_$-]*`, "gi");
    for (const m of project.matchAll(anywhere)) if (!hits.includes(m[0])) hits.push(m[0]);
  }
  return hits.sort();
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return entry === "testing" ? [] : sourceFiles(path);
    return entry.endsWith(".ts") && !entry.endsWith(".test.ts") && !entry.endsWith(".d.ts") ? [path] : [];
  });
}

describe("no policy is named outside packages/policy-*", () => {
  const names = policyNames();

  it("finds the workspace's policies, and would catch a policy-specific code path", () => {
    expect(names).toEqual(expect.arrayContaining(["full", "razor", "snapkv"]));
    const code = stripComments(`// RazorAttention's profile, see policy-razor
      /* H2O: accumulated attention */
      const url = "https://example.org/a//b"; const re = /\\/\\/ not a comment "/;
      if (policy.name === "razor" && spec.params.profile === "auto") calibrate();
      const ref = cells.find((c) => c.policy === 'full');
      log(\`\${label}: prepared\`); import x from "@razorkv/core";`);
    expect(code).toContain('"https://example.org/a//b"');
    expect(policyNameHits(code, names)).toEqual(['"razor"', "'full'", "razor"]);
    expect(policyNameHits(stripComments('const title = "RazorAttention head profile"; snapKvScores(x);'), names)).toEqual(["RazorAttention", "snapKvScores"]);
  });

  it("core, the runner and the report hold none of their names", () => {
    const found: string[] = [];
    for (const dir of SCANNED) {
      for (const file of sourceFiles(join(root, dir))) {
        const hits = policyNameHits(stripComments(readFileSync(file, "utf8")), names);
        for (const hit of hits) found.push(`${relative(root, file)}: ${hit}`);
      }
    }
    expect(found).toEqual([]);
  });
});
