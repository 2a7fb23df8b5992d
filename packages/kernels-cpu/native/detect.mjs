// Build-time probe that binding.gyp runs (`node native/detect.mjs <question>`), printing one answer for gyp.
//   blas        "1" when OpenBLAS (header + library) is found, else "0"
//   blas-cflags include flags for OpenBLAS's cblas.h
//   blas-libs   linker flags for OpenBLAS
//   simd        "1" when the build machine has AVX2 and FMA (the own GEMM and attention use them), else "0"
//   vnni        "1" when it also has AVX-VNNI (vpdpbusd: the quantized dot products' u8×s8 sums in one instruction)
// Environment overrides, for CI matrices and for testing the fallbacks:
//   RAZORKV_BLAS=off   build without OpenBLAS even where it is installed
//   RAZORKV_SIMD=off   build without AVX2/FMA (scalar kernels only)
//   RAZORKV_VNNI=off   build the AVX2 kernels without AVX-VNNI
// Decisions are also reported on stderr so a build log says which variant was built.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

const question = process.argv[2];

function off(name) {
  return ["0", "off", "false", "no"].includes((process.env[name] ?? "").toLowerCase());
}

function pkgConfig(args) {
  try {
    return execFileSync("pkg-config", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
}

/** { cflags, libs } for OpenBLAS, or null. pkg-config first, then the usual Debian/Ubuntu/Fedora locations. */
function findBlas() {
  if (off("RAZORKV_BLAS")) return null;
  const cflags = pkgConfig(["--cflags", "openblas"]);
  const libs = pkgConfig(["--libs", "openblas"]);
  if (cflags !== null && libs !== null) {
    const dir = cflags.split(/\s+/).find((f) => f.startsWith("-I"))?.slice(2);
    if (!dir || existsSync(`${dir}/cblas.h`)) {
      const libDir = libs.split(/\s+/).find((f) => f.startsWith("-L"))?.slice(2);
      const rpath = libDir ? ` -Wl,-rpath,${libDir}` : "";
      return { cflags, libs: libs + rpath };
    }
  }
  const candidates = [
    ["/usr/include/x86_64-linux-gnu/openblas-pthread", "/usr/lib/x86_64-linux-gnu/openblas-pthread"],
    ["/usr/include/aarch64-linux-gnu/openblas-pthread", "/usr/lib/aarch64-linux-gnu/openblas-pthread"],
    ["/usr/include/openblas", "/usr/lib64"],
    ["/usr/include/openblas", "/usr/lib"],
    ["/usr/local/include", "/usr/local/lib"],
    ["/opt/homebrew/opt/openblas/include", "/opt/homebrew/opt/openblas/lib"],
  ];
  for (const [inc, lib] of candidates) {
    const hasLib = ["libopenblas.so", "libopenblas.dylib", "libopenblas.a"].some((f) => existsSync(`${lib}/${f}`));
    if (existsSync(`${inc}/cblas.h`) && existsSync(`${inc}/openblas_config.h`) && hasLib) {
      return { cflags: `-I${inc}`, libs: `-L${lib} -lopenblas -Wl,-rpath,${lib}` };
    }
  }
  return null;
}

function cpuFlags() {
  if (process.arch !== "x64") return [];
  try {
    return readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m)?.[1].split(/\s+/) ?? [];
  } catch {
    return []; // not Linux: stay portable
  }
}

function hasAvx2Fma() {
  if (off("RAZORKV_SIMD")) return false;
  const flags = cpuFlags();
  return flags.includes("avx2") && flags.includes("fma") && flags.includes("f16c");
}

function hasAvxVnni() {
  return hasAvx2Fma() && !off("RAZORKV_VNNI") && cpuFlags().includes("avx_vnni");
}

switch (question) {
  case "blas": {
    const blas = findBlas();
    process.stderr.write(`razorkv-cpu: GEMM backend ${blas ? `OpenBLAS (${blas.cflags} ${blas.libs})` : "own kernel (OpenBLAS not found or RAZORKV_BLAS=off)"}\n`);
    process.stdout.write(blas ? "1" : "0");
    break;
  }
  case "blas-cflags":
    process.stdout.write(findBlas()?.cflags ?? "");
    break;
  case "blas-libs":
    process.stdout.write(findBlas()?.libs ?? "");
    break;
  case "simd": {
    const simd = hasAvx2Fma();
    process.stderr.write(`razorkv-cpu: SIMD ${simd ? "AVX2+FMA+F16C" : "none (scalar kernels)"}\n`);
    process.stdout.write(simd ? "1" : "0");
    break;
  }
  case "vnni": {
    const vnni = hasAvxVnni();
    if (hasAvx2Fma()) process.stderr.write(`razorkv-cpu: AVX-VNNI ${vnni ? "on (quantized dot products)" : "off"}\n`);
    process.stdout.write(vnni ? "1" : "0");
    break;
  }
  default:
    process.stderr.write(`detect.mjs: unknown question ${JSON.stringify(question)}; expected blas, blas-cflags, blas-libs, simd or vnni\n`);
    process.exit(1);
}
