#!/usr/bin/env node
// Paired tests pooled over budgets and modes, for questions a single cell is too small to answer ("does echo/induction
// selection beat random heads at the same count?"): for each `A:B` pair of policy labels, every (task, sample, mode,
// budget) that both scored is one pair, and report/src/stats.ts `pairedTest` compares them (exact McNemar with
// Newcombe's interval for 0/1 scores, the seeded paired bootstrap otherwise). Prints a Markdown table.
//
//   node tools/paired-pooled.mjs <results-folder> --task niah-single A:B [A:B …]
//
// Build first (`pnpm run build`): it reads @razorkv/report's dist. Pooling treats the budgets of one sample as
// separate pairs, so n counts (sample, mode, budget) triples; they are not independent, which makes the interval
// somewhat optimistic: read p as a screening value and look at the per-budget tests in report.html.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadResults, pairedTest } from "../packages/report/dist/index.js";

const args = process.argv.slice(2);
const usage = "usage: node tools/paired-pooled.mjs <results-folder> --task <task> A:B [A:B …]";
const taskAt = args.indexOf("--task");
if (args.length < 4 || taskAt < 0 || taskAt + 1 >= args.length) {
  console.error(usage);
  process.exit(2);
}
const task = args[taskAt + 1];
const [folder, ...pairs] = args.filter((_, i) => i !== taskAt && i !== taskAt + 1);
const { rows } = loadResults(folder);
const scored = rows.filter((r) => r.task === task && r.status === "ok");
if (scored.length === 0) {
  console.error(`paired-pooled: no scored rows of task "${task}" in ${join(folder, "results.jsonl")}`);
  process.exit(1);
}
const labels = new Set(scored.map((r) => r.policyLabel));
const key = (r) => `${r.sampleId}|${r.mode}|${r.budgetNominal}`;
const lines = [
  `Task ${task} (${scored[0].metric}), pairs pooled over samples × modes × budgets (${readFileSync(join(folder, "manifest.yaml"), "utf8").match(/^name: (.*)$/m)?.[1] ?? folder}):`,
  "",
  "| A | B | pairs | A | B | A − B [95% CI] | p | test |",
  "| --- | --- | ---: | ---: | ---: | --- | ---: | --- |",
];
for (const pair of pairs) {
  const [a, b] = pair.split(":");
  for (const label of [a, b]) {
    if (!labels.has(label)) {
      console.error(`paired-pooled: no policy labelled "${label}" in task ${task}; its labels are ${[...labels].join(", ")}`);
      process.exit(1);
    }
  }
  const bRows = new Map(scored.filter((r) => r.policyLabel === b).map((r) => [key(r), r.score]));
  const xs = [];
  const ys = [];
  for (const r of scored.filter((r) => r.policyLabel === a)) {
    if (bRows.has(key(r))) {
      xs.push(r.score);
      ys.push(bRows.get(key(r)));
    }
  }
  if (xs.length === 0) {
    lines.push(`| ${a} | ${b} | 0 | | | no common (sample, mode, budget) | | |`);
    continue;
  }
  const t = pairedTest(xs, ys);
  const f = (x) => (x >= 0 ? "+" : "") + x.toFixed(3);
  lines.push(
    `| ${a} | ${b} | ${t.n} | ${t.meanA.toFixed(3)} | ${t.meanB.toFixed(3)} | ${f(t.difference)} [${f(t.lower)}, ${f(t.upper)}] | ${t.p < 0.001 ? "< 0.001" : t.p.toFixed(3)} | ${t.method}${t.aOnly !== undefined ? ` (${t.aOnly} vs ${t.bOnly} discordant)` : ""} |`,
  );
}
process.stdout.write(lines.join("\n") + "\n");
