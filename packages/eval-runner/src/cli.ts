#!/usr/bin/env node
/**
 * The `razorkv` command line. Each subcommand lives in commands/; this file wires them to commander and turns
 * user-fixable errors (RazorkvError) into one line on stderr and a non-zero exit.
 */
import { Command } from "commander";
import { RazorkvError } from "@razorkv/core";
import { generateCommand } from "./commands/generate.js";
import { pplCommand } from "./commands/ppl.js";
import { calibrateCommand } from "./commands/calibrate.js";
import { newPolicyCommand } from "./commands/new-policy.js";
import { runCommand } from "./commands/run.js";
import { reportCommand } from "./commands/report.js";

const program = new Command()
  .name("razorkv")
  .description("KV-cache compression benchmarking harness (RazorAttention, StreamingLLM, H2O, SnapKV, …)")
  .showHelpAfterError();

program.addCommand(generateCommand());
program.addCommand(pplCommand());
program.addCommand(calibrateCommand());
program.addCommand(newPolicyCommand());
program.addCommand(runCommand());
program.addCommand(reportCommand());

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = reportError(error);
}

function reportError(error: unknown): number {
  if (error instanceof RazorkvError) {
    process.stderr.write(`razorkv: ${error.message}\n`);
    return 1;
  }
  if (process.env.RAZORKV_DEBUG) throw error;
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`razorkv: internal error: ${message.split("\n")[0]} (set RAZORKV_DEBUG=1 for the stack trace)\n`);
  return 2;
}
