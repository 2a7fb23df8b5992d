#!/usr/bin/env node
// Set-up, then the requested command: what the root package.json scripts run, so that `npm run experiment` and
// `npm test` are the first two commands on a machine with only Node >= 20 and npm (and they still work via pnpm).
//
//   node tools/bootstrap.mjs <target> [args…]
//     experiment [manifest] [--out DIR] …   node packages/eval-runner/dist/cli.js run …
//     razorkv <command> …                   node packages/eval-runner/dist/cli.js …
//     test […turbo args]                    turbo run typecheck test --continue …
//     bench […args]                         node bench/run.js …
//     setup                                 the set-up alone
//
// Set-up, each step skipped when it is already done, so a second call costs a few file stats (tens of ms):
//   1. Node: the major version package.json "engines" asks for, or one line saying so.
//   2. npm_config_nodedir=/usr when unset and Debian's Node headers are in /usr/include/node (node-gyp then never
//      downloads headers; see .ci/run).
//   3. pnpm at package.json "packageManager"'s version: the one on the PATH when it is that version, else a private
//      copy installed with npm into $XDG_CACHE_HOME/razorkv/pnpm-<version> (~/.cache/…; no root, no corepack: the
//      corepack bundled with Node 20 cannot verify pnpm 10's signatures). Its bin folder is put first on the PATH of
//      every child, since turbo runs each package's script through pnpm.
//   4. `pnpm install --frozen-lockfile` when node_modules/.razorkv/installed is missing or older than
//      pnpm-lock.yaml or pnpm-workspace.yaml.
//   5. Before a build: Debian's libopenblas-dev through apt-get when running as root with apt-get present and
//      OpenBLAS missing; otherwise, once per checkout, a line saying that the addon uses its own, slower GEMM.
//   6. The default model (smollm2-135m-instruct) seeded into the local hub cache with ../shared/bin/seed-hf-cache
//      when it is not there and that script exists (the machines here reach no hub). Only for targets that load it.
//   7. `turbo run build --output-logs=errors-only` when a package's sources are newer than
//      node_modules/.razorkv/built (or an output is missing); its output is kept and shown only if it fails.
// Every step's output goes to stderr; stdout belongs to the target. Exit status: the target's, 1 when a step fails.
//
// Arguments: a leading `--` (pnpm passes it through: `pnpm run experiment -- my.yaml`) is dropped by the CLI. npm
// run without `--` takes options it does not know for its own config (`npm run experiment my.yaml --out DIR`
// reaches the script as `my.yaml DIR` with npm_config_out=true); for the experiment target those options are put
// back from npm's environment (npmExperimentArgs below).
import { spawnSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { constants, homedir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const STATE = join(ROOT, "node_modules", ".razorkv");
const CLI = join(ROOT, "packages", "eval-runner", "dist", "cli.js");
/** Environment variables turbo.json names as build inputs: a change of any of them means a rebuild. */
const BUILD_ENV = ["RAZORKV_BLAS", "RAZORKV_SIMD", "RAZORKV_CPU_KERNELS"];
/** Per package, what turbo.json's build "inputs" name. */
const BUILD_INPUTS = ["src", "native", "binding.gyp", "tsconfig.json", "package.json"];
/** The model the default experiment and the tests load. */
const DEFAULT_MODEL = "smollm2-135m-instruct";
/** razorkv commands that load a model, and so want it in the cache first. */
const MODEL_COMMANDS = new Set(["generate", "ppl", "calibrate", "run"]);

class SetupError extends Error {}

function log(line) {
  process.stderr.write(`razorkv setup: ${line}\n`);
}

function readJson(path) {
  return JSON.parse(readFileSync(path, "utf8"));
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

/** Newest mtime under `path` (a file or a folder, walked), or -1 when it does not exist. */
function newestMtime(path) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return -1;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

// ---------------------------------------------------------------------------------------------------------------
// 1, 2: Node and the node-gyp headers

function checkNode(pkg) {
  const wanted = Number(/(\d+)/.exec(pkg.engines?.node ?? ">=20")?.[1] ?? 20);
  const major = Number(process.versions.node.split(".")[0]);
  if (major < wanted) {
    throw new SetupError(`Node ${process.versions.node} is too old: package.json engines asks for ${pkg.engines?.node}; install Node ${wanted} or newer`);
  }
}

function nodeGypEnv(env) {
  if (!env.npm_config_nodedir && existsSync("/usr/include/node/node_api.h")) env.npm_config_nodedir = "/usr";
}

// ---------------------------------------------------------------------------------------------------------------
// 3: pnpm

/** Version of the pnpm an executable path belongs to, read from its package.json (no process started), or null. */
function pnpmVersionAt(bin) {
  try {
    let dir = dirname(realpathSync(bin));
    for (let i = 0; i < 3; i++, dir = dirname(dir)) {
      const manifest = join(dir, "package.json");
      if (existsSync(manifest)) {
        const pkg = readJson(manifest);
        if (pkg.name === "pnpm" || pkg.name === "@pnpm/exe") return pkg.version;
      }
    }
  } catch {
    /* not a file we can read */
  }
  const run = spawnSync(bin, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  return run.status === 0 ? run.stdout.trim() : null;
}

function onPath(name, env) {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

/** A folder whose `pnpm` is the pinned version, installing a private copy with npm when needed. */
function ensurePnpm(version, env) {
  const found = onPath("pnpm", env);
  if (found && pnpmVersionAt(found) === version) return dirname(found);
  const cacheHome = env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache");
  const prefix = join(cacheHome, "razorkv", `pnpm-${version}`);
  const bin = join(prefix, "node_modules", ".bin");
  if (existsSync(join(bin, "pnpm")) && pnpmVersionAt(join(bin, "pnpm")) === version) return bin;
  log(`installing pnpm ${version} into ${prefix} with npm${found ? ` (the pnpm on the PATH is not ${version})` : " (no pnpm on the PATH)"}`);
  mkdirSync(prefix, { recursive: true });
  // a plain local install: npm keeps reading the machine's global npmrc (a `-g --prefix` would not)
  const npm = spawnSync(
    "npm",
    ["install", "--prefix", prefix, "--no-save", "--no-package-lock", "--no-fund", "--no-audit", "--no-update-notifier", "--loglevel=error", `pnpm@${version}`],
    { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  );
  if (npm.status !== 0 || !existsSync(join(bin, "pnpm"))) {
    process.stderr.write(`${npm.stdout ?? ""}${npm.stderr ?? ""}`);
    throw new SetupError(`could not install pnpm ${version} with npm (is the npm registry reachable?); or run \`npm i -g pnpm@${version}\` yourself`);
  }
  return bin;
}

// ---------------------------------------------------------------------------------------------------------------
// 4: dependencies

function installStale() {
  const stamp = mtime(join(STATE, "installed"));
  return stamp < 0 || stamp < mtime(join(ROOT, "pnpm-lock.yaml")) || stamp < mtime(join(ROOT, "pnpm-workspace.yaml"));
}

function touch(path, atMs = Date.now()) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, "");
  utimesSync(path, atMs / 1000, atMs / 1000);
}

function runQuiet(what, command, args, env) {
  const started = Date.now();
  const run = spawnSync(command, args, { cwd: ROOT, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 256 << 20 });
  if (run.error) throw new SetupError(`${what}: could not start ${command} (${run.error.message})`);
  if (run.status !== 0) {
    process.stderr.write(`${run.stdout}${run.stderr}`);
    throw new SetupError(`${what} failed (\`${[command, ...args].join(" ")}\` exited with ${run.status ?? run.signal}); its output is above`);
  }
  return Date.now() - started;
}

// ---------------------------------------------------------------------------------------------------------------
// 5: OpenBLAS

function hasOpenBlas(env) {
  const probe = spawnSync(process.execPath, [join(ROOT, "packages", "kernels-cpu", "native", "detect.mjs"), "blas"], {
    env: { ...env, RAZORKV_BLAS: "" }, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"],
  });
  return probe.stdout?.trim() === "1";
}

/** True when OpenBLAS was installed just now (the addon must then be rebuilt, not replayed from turbo's cache). */
function ensureOpenBlas(env) {
  if (["0", "off", "false", "no"].includes((env.RAZORKV_BLAS ?? "").toLowerCase()) || hasOpenBlas(env)) return false;
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  if (root && onPath("apt-get", env)) {
    log("installing Debian's libopenblas-dev with apt-get (the native addon's GEMM)");
    const aptEnv = { ...env, DEBIAN_FRONTEND: "noninteractive" };
    runQuiet("apt-get update", "apt-get", ["update", "-qq"], aptEnv);
    runQuiet("apt-get install libopenblas-dev", "apt-get", ["install", "-y", "-qq", "--no-install-recommends", "libopenblas-dev"], aptEnv);
    return true;
  }
  const notice = join(STATE, "openblas-notice");
  if (!existsSync(notice)) {
    log("OpenBLAS not found: the native addon is built with its own AVX2/FMA GEMM, slower at prefill; for OpenBLAS run " +
      "`sudo apt-get install libopenblas-dev && rm -rf node_modules/.razorkv/built`, then any razorkv command (said once)");
    touch(notice);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// 6: the model

/** The default model's file in the hub cache, from model-zoo's alias table (the one place it is written). */
function defaultModelPath(env) {
  const aliases = readFileSync(join(ROOT, "packages", "model-zoo", "src", "aliases.ts"), "utf8");
  const m = new RegExp(`"${DEFAULT_MODEL}":\\s*"hf:([^/"]+)/([^@"]+)@([0-9a-f]{40}):([^"]+)"`).exec(aliases);
  if (!m) return null;
  const [, org, name, revision, file] = m;
  // @huggingface/hub's rules: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub
  const cache = env.HF_HUB_CACHE || (env.HF_HOME ? join(env.HF_HOME, "hub") : join(env.HOME || homedir(), ".cache", "huggingface", "hub"));
  return join(cache, `models--${org}--${name}`, "snapshots", revision, file);
}

function ensureModel(env) {
  const path = defaultModelPath(env);
  if (path === null || existsSync(path)) return;
  const seed = join(ROOT, "..", "shared", "bin", "seed-hf-cache");
  if (!existsSync(seed)) return; // resolving the model then fetches it from the hub, or says what is missing
  log(`seeding ${DEFAULT_MODEL} into the local hub cache with ../shared/bin/seed-hf-cache`);
  runQuiet("../shared/bin/seed-hf-cache", seed, [], env);
}

// ---------------------------------------------------------------------------------------------------------------
// 7: the build

function packageDirs() {
  const dir = join(ROOT, "packages");
  return readdirSync(dir).map((name) => join(dir, name)).filter((p) => existsSync(join(p, "package.json")));
}

function buildEnvKey(env) {
  return JSON.stringify(BUILD_ENV.map((k) => env[k] ?? ""));
}

/** Why a build is needed, or null: sources newer than the stamp, a missing output, a changed build variable. */
function buildStale(env) {
  const stampPath = join(STATE, "built");
  const stamp = mtime(stampPath);
  if (stamp < 0) return "first build";
  if (readFileSync(stampPath, "utf8") !== buildEnvKey(env)) return `${BUILD_ENV.join("/")} changed`;
  for (const dir of packageDirs()) {
    const pkg = readJson(join(dir, "package.json"));
    if (pkg.scripts?.build && !existsSync(join(dir, "dist"))) return `${pkg.name} has no dist/`;
    for (const input of BUILD_INPUTS) if (newestMtime(join(dir, input)) > stamp) return `${pkg.name} changed`;
  }
  return null;
}

function build(env, force) {
  const reason = force ? "OpenBLAS installed" : buildStale(env);
  if (reason === null) return;
  const started = Date.now();
  const turbo = join(ROOT, "node_modules", ".bin", "turbo");
  runQuiet("the build", turbo, ["run", "build", "--output-logs=errors-only", ...(force ? ["--force"] : [])], env);
  const stampPath = join(STATE, "built");
  writeFileSync(stampPath, buildEnvKey(env));
  // the stamp carries the time the build started: a file saved during the build is newer, so it rebuilds next time
  utimesSync(stampPath, started / 1000, started / 1000);
}

// ---------------------------------------------------------------------------------------------------------------
// arguments

/** Options of `razorkv run`, by npm config name, and how to put each back on the command line. */
const RUN_OPTIONS = {
  out: { flag: "--out", kind: "value" },
  dry_run: { flag: "--dry-run", kind: "boolean" },
  share_prefill: { flag: "--no-share-prefill", kind: "negatable" },
  report: { flag: "--no-report", kind: "negatable" },
};

/**
 * The experiment target's arguments as the user typed them. Under `npm run` without `--`, npm keeps the options it
 * does not know as its config (`--out DIR` → npm_config_out=true and DIR left as an argument; `--out=DIR` →
 * npm_config_out=DIR; `--no-report` → npm_config_report=""); this puts them back. A no-op under pnpm, which passes
 * arguments through, and for options already on the command line.
 */
export function npmExperimentArgs(args, env) {
  if (!(env.npm_config_user_agent ?? "").startsWith("npm/")) return args;
  const out = [...args];
  for (const [name, { flag, kind }] of Object.entries(RUN_OPTIONS)) {
    const value = env[`npm_config_${name}`];
    if (value === undefined || out.includes(flag) || out.some((a) => a.startsWith(`${flag}=`))) continue;
    if (kind === "boolean" && value === "true") out.push(flag);
    else if (kind === "negatable" && (value === "" || value === "false")) out.push(flag);
    else if (kind === "value") {
      if (value !== "true" && value !== "") out.push(flag, value);
      else {
        // `--out DIR`: npm left DIR among the arguments; the manifest is the .yaml one
        const positional = out.filter((a) => !a.startsWith("-"));
        const dir = positional.length >= 2 ? positional.find((a) => !/\.ya?ml$/i.test(a)) : undefined;
        if (dir === undefined) out.push(flag); // the CLI then says that --out needs a folder
        else {
          out.splice(out.indexOf(dir), 1);
          out.push(flag, dir);
        }
      }
    }
  }
  return out;
}

function wantsModel(target, args) {
  if (target === "experiment" || target === "test" || target === "bench") return !args.includes("--help") && !args.includes("-h");
  if (target !== "razorkv") return false;
  const command = args.find((a) => !a.startsWith("-"));
  return command !== undefined && MODEL_COMMANDS.has(command) && !args.includes("--help") && !args.includes("-h");
}

// ---------------------------------------------------------------------------------------------------------------

function targetCommand(target, args) {
  switch (target) {
    case "experiment":
      return [process.execPath, [CLI, "run", ...args]];
    case "razorkv":
      return [process.execPath, [CLI, ...args]];
    case "test":
      return [join(ROOT, "node_modules", ".bin", "turbo"), ["run", "typecheck", "test", "--continue", ...args]];
    case "bench":
      return [process.execPath, [join(ROOT, "bench", "run.js"), ...args]];
    case "setup":
      return null;
    default:
      throw new SetupError(`unknown target "${target}"; expected experiment, razorkv, test, bench or setup`);
  }
}

async function main() {
  const [target, ...rawArgs] = process.argv.slice(2);
  const pkg = readJson(join(ROOT, "package.json"));
  checkNode(pkg);
  const args = target === "experiment" ? npmExperimentArgs(rawArgs, process.env) : rawArgs;
  const command = targetCommand(target ?? "", args);
  const env = { ...process.env };
  nodeGypEnv(env);

  const needInstall = installStale() || !existsSync(join(ROOT, "node_modules", ".bin", "turbo"));
  const needBuild = needInstall || buildStale(env) !== null;
  if (needInstall || needBuild || target === "test") {
    const version = pkg.packageManager.split("@")[1];
    const pnpmBin = ensurePnpm(version, env);
    env.PATH = `${pnpmBin}${delimiter}${env.PATH ?? ""}`;
    if (needInstall) {
      const started = Date.now();
      log(`installing dependencies (pnpm ${version} install --frozen-lockfile)`);
      runQuiet("pnpm install", join(pnpmBin, "pnpm"), ["install", "--frozen-lockfile"], env);
      touch(join(STATE, "installed"), started);
    }
  }
  if (wantsModel(target, args)) ensureModel(env);
  if (needBuild) {
    const blasInstalled = ensureOpenBlas(env);
    // a rebuild after an edit says nothing unless it fails; the first one takes long enough to deserve a line
    if (buildStale(env) === "first build") log("building the workspace (the native addon takes a minute)");
    build(env, blasInstalled);
  }
  if (command === null) return 0;

  const [bin, binArgs] = command;
  const child = spawn(bin, binArgs, { cwd: process.cwd(), env, stdio: "inherit" });
  // Ctrl-C reaches the whole process group; let the child decide, and leave with its status
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
  return await new Promise((resolve) => {
    child.on("error", (error) => {
      process.stderr.write(`razorkv setup: could not start ${bin} (${error.message})\n`);
      resolve(1);
    });
    child.on("exit", (code, signal) => resolve(code ?? 128 + (constants.signals[signal] ?? 1)));
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main().then(
    (code) => process.exit(code),
    (error) => {
      if (!(error instanceof SetupError) && process.env.RAZORKV_DEBUG) throw error;
      process.stderr.write(`razorkv setup: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
