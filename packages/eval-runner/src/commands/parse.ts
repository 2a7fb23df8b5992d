/**
 * Option parsing shared by the commands: value parsers that refuse nonsense with one line naming the option, what
 * it expects and what it got, and the clean-up of argv as npm and pnpm pass it on.
 */
import { type Command, InvalidArgumentError } from "commander";
import { parseModelRef } from "@razorkv/model-zoo";

/** Parser of a count ≥ `min` (1 by default): digits only, so "-3", "0", "1.5", "1e3" and "abc" are refused. */
export function positiveInteger(flag: string, min = 1): (value: string) => number {
  return (value) => {
    const n = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`${flag} expects ${min === 1 ? "a positive integer" : `an integer ≥ ${min}`}, got "${value}"`);
    }
    return n;
  };
}

/** Parser of an integer ≥ 0 (seeds). */
export function nonNegativeInteger(flag: string): (value: string) => number {
  return (value) => {
    const n = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${flag} expects an integer ≥ 0, got "${value}"`);
    return n;
  };
}

/** Parser of a fraction in [0, 1]. */
export function fraction(flag: string): (value: string) => number {
  return (value) => {
    const x = Number(value);
    if (value.trim() === "" || !Number.isFinite(x) || x < 0 || x > 1) throw new InvalidArgumentError(`${flag} expects a fraction in [0, 1], got "${value}"`);
    return x;
  };
}

/** Parser of one of a few words (an enum option). */
export function oneOf<T extends string>(flag: string, values: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(values as readonly string[]).includes(value)) throw new InvalidArgumentError(`${flag} expects one of ${values.join(", ")}, got "${value}"`);
    return value as T;
  };
}

/** Parser of a text that must not be empty (a prompt, a path). */
export function nonEmpty(flag: string, what: string): (value: string) => string {
  return (value) => {
    if (value.trim() === "") throw new InvalidArgumentError(`${flag} expects ${what}, got "${value}"`);
    return value;
  };
}

/**
 * Parser of a model reference: checks its form (alias, pinned hub reference, path) before anything loads; whether
 * the file is there is the loader's to say.
 */
export function modelRef(flag: string): (value: string) => string {
  return (value) => {
    try {
      parseModelRef(value);
    } catch (error) {
      throw new InvalidArgumentError(`${flag}: ${(error as Error).message.split("\n")[0]}`);
    }
    return value;
  };
}

/** What `--model` says in every command's help. */
export const MODEL_HELP = "model alias (smollm2-135m-instruct), hf:<org>/<name>@<40-hex revision>[:<file>], or a local path (required)";

/**
 * The command line as the user meant it: argv after the script, less a `--` that only separated the arguments from
 * the package manager's (`pnpm run experiment -- my.yaml --out DIR` passes the `--` on), at the start or right
 * after the command name. A `--` anywhere else keeps commander's meaning.
 */
export function userArgs(argv: readonly string[], commands: readonly string[]): string[] {
  const args = [...argv];
  if (args[0] === "--") args.shift();
  if (args.length > 1 && commands.includes(args[0]) && args[1] === "--") args.splice(1, 1);
  return args;
}

/**
 * commander's own errors (unknown option, missing value, invalid value, too many arguments) as one line:
 * `razorkv: <what is wrong> (razorkv <command> --help lists the options)`; an invalid value says only our parser's
 * message, which names the option, what it expects and what it got.
 */
export function oneLineErrors(command: Command, path: string): Command {
  return command.configureOutput({
    outputError: (text, write) => {
      const message = text.trim().replace(/^error: /, "");
      const invalid = /^option '[^']+' argument '.*' is invalid\. (.*)$/s.exec(message);
      // commander puts a suggestion on a line of its own ("(Did you mean --force?)"): keep it, on the one line
      const line = (invalid ? invalid[1] : message).replace(/\s*\n\s*/g, " ");
      write(`razorkv: ${line} (${path} --help lists the options)\n`);
    },
  });
}
