// The native half of `pnpm build`: compiles the CUDA kernels with nvcc when nvcc exists (native/build-cuda.sh;
// no GPU needed), then the N-API addon with node-gyp, linking the kernels when they were built. Without nvcc (or
// with RAZORKV_CUDA=off) the addon carries the CPU references only, and the rest of the workspace builds and tests
// as before. A compile error with nvcc present fails the build: CI must see it.
import { spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

function findNvcc() {
  if (process.env.NVCC) return existsSync(process.env.NVCC) ? process.env.NVCC : null;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, "nvcc"))) return join(dir, "nvcc");
  }
  for (const home of [process.env.CUDA_HOME, process.env.CUDA_PATH, "/usr/local/cuda"]) {
    if (home && existsSync(join(home, "bin", "nvcc"))) return join(home, "bin", "nvcc");
  }
  return null;
}

function run(command, args, env) {
  // the build's own output goes to stderr, like kernels-cpu's `node-gyp rebuild >&2`
  const result = spawnSync(command, args, { cwd: root, env, stdio: ["ignore", 2, 2] });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    process.stderr.write(`kernels-cuda: \`${[command, ...args].join(" ")}\` failed with status ${result.status}\n`);
    process.exit(result.status ?? 1);
  }
}

rmSync(join(root, "build"), { recursive: true, force: true });

const env = { ...process.env };
const nvcc = process.env.RAZORKV_CUDA === "off" ? null : findNvcc();
if (nvcc) {
  run("bash", [join(root, "native", "build-cuda.sh")], { ...env, NVCC: nvcc });
} else {
  process.stderr.write(
    process.env.RAZORKV_CUDA === "off"
      ? "kernels-cuda: RAZORKV_CUDA=off, CUDA kernels not built\n"
      : "kernels-cuda: nvcc not found, CUDA kernels not built\n",
  );
}

// node-gyp reads Node's headers from npm_config_nodedir; Debian's nodejs package installs them under /usr.
if (!env.npm_config_nodedir && existsSync("/usr/include/node/node_api.h")) env.npm_config_nodedir = "/usr";
const nodeGyp = createRequire(import.meta.url).resolve("node-gyp/bin/node-gyp.js");
run(process.execPath, [nodeGyp, "configure", "build"], env);
