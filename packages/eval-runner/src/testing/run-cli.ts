/** Test helpers that run the built `razorkv` CLI as a user would (a child process of this Node). */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The built CLI; tests that use it need `pnpm run build` first (turbo runs build before test). */
export const CLI = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));

/** `razorkv run <manifest> --no-report` to its end; resolves with what it logged on stderr, rejects with it on failure. */
export function runManifest(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, "run", path, "--no-report"], (error, _out, stderr) => (error ? reject(new Error(stderr)) : resolve(stderr)));
  });
}
