#!/usr/bin/env node
/**
 * The `razorkv` command line. Each subcommand lives in commands/; this file wires them to commander and turns every
 * user-fixable error (RazorkvError, and commander's own: unknown option, invalid value, too many arguments) into one
 * line on stderr and exit status 1; an internal error is one line and status 2 (RAZORKV_DEBUG=1: the stack trace).
 * Output contract: a command's result on stdout (JSON lines where it returns data), progress and logs on stderr.
 */
import { Command } from "commander";
import { RazorkvError } from "@razorkv/core";
import { generateCommand } from "./commands/generate.js";
import { pplCommand } from "./commands/ppl.js";
import { calibrateCommand } from "./commands/calibrate.js";
import { newPolicyCommand } from "./commands/new-policy.js";
import { runCommand } from "./commands/run.js";
import { mergeCommand } from "./commands/merge.js";
import { reportCommand } from "./commands/report.js";
import { doctorCommand } from "./commands/doctor.js";
import { oneLineErrors, userArgs } from "./commands/parse.js";

const program = new Command()
  .name("razorkv")
  .description("KV-cache compression benchmarking harness: every compression policy a workspace package, run over real LLMs")
  .showSuggestionAfterError();
oneLineErrors(program, "razorkv");

const commands = [generateCommand(), pplCommand(), calibrateCommand(), newPolicyCommand(), runCommand(), mergeCommand(), reportCommand(), doctorCommand()];
for (const command of commands) {
  program.addCommand(command);
  oneLineErrors(command.showSuggestionAfterError(), `razorkv ${command.name()}`);
}
// `razorkv --help` lists every command's options with their defaults, not just the command names
program.addHelpText("after", () => "\n" + commands.map((c) => c.helpInformation().replace(/^Usage: /, "").trimEnd()).join("\n\n") + "\n");

try {
  await program.parseAsync(userArgs(process.argv.slice(2), commands.map((c) => c.name())), { from: "user" });
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
