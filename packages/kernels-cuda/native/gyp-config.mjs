// Answers binding.gyp's questions from build/cuda/config.json, which native/build-cuda.sh writes after compiling the
// CUDA kernels: `cuda` → 1 or 0 (absent: the addon is built with the CPU references only), `include`, `libraries`.
import { existsSync, readFileSync } from "node:fs";

const configPath = new URL("../build/cuda/config.json", import.meta.url);
const config = process.env.RAZORKV_CUDA !== "off" && existsSync(configPath) ? JSON.parse(readFileSync(configPath, "utf8")) : null;
const question = process.argv[2];
if (question === "cuda") process.stdout.write(config ? "1" : "0");
else if (question === "include") process.stdout.write(config ? config.include : "");
else if (question === "libraries") process.stdout.write(config ? config.libraries.join(" ") : "");
else {
  process.stderr.write(`gyp-config.mjs: unknown question ${question}\n`);
  process.exit(1);
}
