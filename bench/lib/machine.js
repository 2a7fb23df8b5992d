// What the benchmarks record about the machine and the other processes on it (the machine is shared: each run says
// how much CPU the others took while it ran).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";

export function cpuModel() {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("model name"));
    if (line) return line.split(":").slice(1).join(":").trim();
  } catch {}
  return os.cpus()[0]?.model ?? "unknown";
}

/** lscpu's topology and caches, and the SIMD flags the comparison depends on, or null without lscpu. */
export function lscpu() {
  try {
    const out = execFileSync("lscpu", [], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const get = (key) => out.split("\n").find((l) => l.startsWith(key + ":"))?.split(":").slice(1).join(":").trim();
    const flags = get("Flags") ?? "";
    return {
      threadsPerCore: Number(get("Thread(s) per core")) || null,
      coresPerSocket: Number(get("Core(s) per socket")) || null,
      sockets: Number(get("Socket(s)")) || null,
      l2: get("L2 cache") ?? null,
      l3: get("L3 cache") ?? null,
      simd: ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8"].filter((f) => new RegExp(`\\b${f}\\b`).test(flags)),
    };
  } catch {
    return null;
  }
}

export function gitCommit(cwd) {
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
}

/** Busy CPU seconds of the whole machine so far (all CPUs, /proc/stat), or null where there is no /proc/stat. */
export function machineBusySeconds() {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …
    return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] || 0)) / 100; // USER_HZ = 100 on Linux
  } catch {
    return null;
  }
}

/**
 * Waits (up to `limitSeconds`) until the other processes use less than `threshold` CPU over a second. Returns the
 * seconds waited.
 */
/** CPU seconds per second of the other processes below which the machine counts as idle. */
export const IDLE_CPU = 0.25;

export function waitIdle(limitSeconds, threshold = IDLE_CPU) {
  if (!(limitSeconds > 0) || machineBusySeconds() === null) return 0;
  const t0 = Date.now();
  const sleep = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    const b0 = machineBusySeconds();
    Atomics.wait(sleep, 0, 0, 1000);
    const others = machineBusySeconds() - b0; // this process sleeps meanwhile
    const waited = (Date.now() - t0) / 1000;
    if (others < threshold || waited >= limitSeconds) return Number(waited.toFixed(1));
  }
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
