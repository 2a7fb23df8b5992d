// Builds razorkv_cpu.node: `node-gyp rebuild`, with node-gyp's output on stderr (stdout stays clean for turbo).
//
// Headers: npm_config_nodedir when set; otherwise, when the running Node's headers are installed beside it
// (Debian's nodejs: /usr/bin/node, /usr/include/node), that prefix, so node-gyp never tries to download them.
//
// A failed build stops the package build, since a forward pass silently 30× slower is worse than an error; set
// RAZORKV_CPU_KERNELS=off to skip the addon on a machine without a C++ compiler (loadKernels() then returns null
// and the TypeScript reference runs).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const packageDir = join(dirname(new URL(import.meta.url).pathname), "..");
const setting = (process.env.RAZORKV_CPU_KERNELS ?? "").toLowerCase();
if (["0", "off", "false", "no"].includes(setting)) {
  process.stderr.write("razorkv-cpu: RAZORKV_CPU_KERNELS=off, native addon not built\n");
  process.exit(0);
}

const args = ["rebuild"];
if (!process.env.npm_config_nodedir) {
  const prefix = dirname(dirname(process.execPath));
  if (existsSync(join(prefix, "include", "node", "node_api.h"))) args.push(`--nodedir=${prefix}`);
}
const nodeGyp = createRequire(import.meta.url).resolve("node-gyp/bin/node-gyp.js");
const result = spawnSync(process.execPath, [nodeGyp, ...args], { cwd: packageDir, stdio: ["ignore", 2, 2] });
if (result.status !== 0) {
  process.stderr.write(
    `razorkv-cpu: node-gyp ${args.join(" ")} failed (exit ${result.status ?? result.signal}). ` +
      "It needs python3, make and a C++17 compiler; set npm_config_nodedir to a Node source or headers directory if the " +
      "headers are missing, or RAZORKV_CPU_KERNELS=off to build without the native kernels.\n",
  );
  process.exit(1);
}
