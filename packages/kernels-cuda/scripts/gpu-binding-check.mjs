// The binding on a GPU without vitest (device machines may have Node but not the workspace's dev dependencies):
// the CPU reference against core's TypeScript reference, then the CUDA kernels through DeviceLayer / DeviceBuffer
// against the CPU reference. Needs `pnpm build` output (dist/, build/Release/razorkv_cuda.node).
import { cudaStatus } from "../dist/index.js";
import { gpuChecks, referenceChecks } from "../dist/testing/checks.js";

const status = cudaStatus();
if (!status.available) {
  console.error(`gpu-binding-check: no GPU through the binding (${status.reason})`);
  process.exit(1);
}
console.log(`binding checks on ${status.name} (compute capability ${status.computeCapability})`);
let failed = 0;
const results = [...referenceChecks(), ...gpuChecks()];
for (const r of results) {
  if (!r.ok) failed++;
  console.log(`${r.ok ? "ok  " : "FAIL"} ${r.name.padEnd(72)} max rel err ${r.maxRelError.toExponential(3)} (tol ${r.tolerance.toExponential(0)})`);
}
console.log(`gpu-binding-check: ${results.length - failed} of ${results.length} checks passed`);
process.exit(failed ? 1 : 0);
