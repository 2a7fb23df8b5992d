/**
 * Test-only: a real single-node Slurm cluster on localhost (Debian's munge, slurmctld and slurmd; .ci/run installs
 * them), started in a temp folder in a few seconds and torn down after. Everything it needs — the munge key and
 * socket, the state and spool folders, the logs, slurm.conf — lives in that folder; its ports are picked free, so it
 * never meets a cluster the machine already runs. The daemons run as root (slurmd must), so the tests need root.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";

const DAEMONS = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel"] as const;

/** Why this machine cannot run the cluster (for registerMissing), or null when it can. */
export function slurmMissing(): string | null {
  if (process.getuid?.() !== 0) return "the Slurm tests start slurmd, which must run as root";
  const path = `${process.env.PATH ?? ""}:/usr/sbin:/sbin`;
  const lacking = DAEMONS.filter((d) => spawnSync("sh", ["-c", `command -v ${d}`], { env: { ...process.env, PATH: path } }).status !== 0);
  return lacking.length === 0 ? null : `${lacking.join(", ")} not found: apt-get install slurmctld slurmd slurm-client munge (.ci/run does)`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface SlurmCluster {
  /** Environment for sbatch/squeue/… and for the jobs (SLURM_CONF points at this cluster). */
  readonly env: NodeJS.ProcessEnv;
  /** Runs a Slurm client command, returning its stdout; throws with its stderr on failure. */
  run(command: string, args: readonly string[], options?: { cwd?: string }): string;
  /** Resolves once no job of the given ids (`sbatch --parsable` output) is pending or running. */
  waitIdle(jobIds: readonly string[], timeoutMs: number): Promise<void>;
  /** The final state of every task of a job, from scontrol (e.g. {"5_0": "COMPLETED", "5_1": "CANCELLED"}). */
  states(jobId: string): Record<string, string>;
  stop(): void;
}

/** Starts munged, slurmctld and slurmd on localhost with `dir` holding all their files. */
export async function startSlurm(dir: string): Promise<SlurmCluster> {
  const path = `${process.env.PATH ?? ""}:/usr/sbin:/sbin`;
  for (const sub of ["state", "spool", "munge"]) mkdirSync(join(dir, sub), { recursive: true });
  chmodSync(join(dir, "munge"), 0o700);
  const key = join(dir, "munge", "munge.key");
  writeFileSync(key, randomBytes(1024), { mode: 0o600 });
  const socket = join(dir, "munge", "munge.socket");
  execFileSync("munged", [`--key-file=${key}`, `--socket=${socket}`, `--pid-file=${join(dir, "munge", "munged.pid")}`,
    `--log-file=${join(dir, "munge", "munged.log")}`, `--seed-file=${join(dir, "munge", "seed")}`, "--force"], { env: { ...process.env, PATH: path } });
  const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
  const conf = join(dir, "slurm.conf");
  writeFileSync(conf, [
    "ClusterName=razorkvtest", "SlurmctldHost=localhost", "SlurmUser=root", "SlurmdUser=root",
    "AuthType=auth/munge", `AuthInfo=socket=${socket}`, "CredType=cred/munge",
    `StateSaveLocation=${join(dir, "state")}`, `SlurmdSpoolDir=${join(dir, "spool")}`,
    `SlurmctldPidFile=${join(dir, "slurmctld.pid")}`, `SlurmdPidFile=${join(dir, "slurmd.pid")}`,
    `SlurmctldPort=${ctldPort}`, `SlurmdPort=${slurmdPort}`,
    `SlurmctldLogFile=${join(dir, "slurmctld.log")}`, `SlurmdLogFile=${join(dir, "slurmd.log")}`,
    "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
    "SchedulerType=sched/backfill", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
    "ReturnToService=2", "JobCompType=jobcomp/none", "AccountingStorageType=accounting_storage/none",
    // a finished job stays visible to scontrol for a minute, long enough to read its tasks' states
    "MinJobAge=60",
    // the machine's real cores and memory, so that examples/slurm's requests (--mem, --cpus-per-task) fit as written
    `NodeName=localhost NodeAddr=127.0.0.1 CPUs=${Math.max(1, cpus().length)} RealMemory=${Math.floor(totalmem() / 2 ** 20)} State=UNKNOWN`,
    "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
    "",
  ].join("\n"));
  const env = { ...process.env, PATH: path, SLURM_CONF: conf };
  execFileSync("slurmctld", ["-f", conf, "-i"], { env });
  execFileSync("slurmd", ["-f", conf, "-N", "localhost"], { env });

  const run = (command: string, args: readonly string[], options: { cwd?: string } = {}): string => {
    const r = spawnSync(command, args, { env, cwd: options.cwd, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${command} ${args.join(" ")}: exit ${r.status}: ${(r.stderr || r.stdout).trim()}`);
    return r.stdout;
  };
  const cluster: SlurmCluster = {
    env,
    run,
    async waitIdle(jobIds, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const queued = run("squeue", ["-h", "-o", "%i %T", "-j", jobIds.join(",")]).trim();
        if (queued === "") return;
        if (Date.now() > deadline) throw new Error(`Slurm jobs ${jobIds.join(", ")} still queued after ${timeoutMs} ms:\n${queued}\n${tail(join(dir, "slurmctld.log"))}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    states(jobId) {
      const out = run("scontrol", ["show", "job", "-o", jobId]);
      const states: Record<string, string> = {};
      for (const line of out.split("\n")) {
        const id = /ArrayJobId=(\d+) ArrayTaskId=(\d+)/.exec(line) ?? /JobId=(\d+)/.exec(line);
        const state = /JobState=(\S+)/.exec(line);
        if (id && state) states[id[2] !== undefined ? `${id[1]}_${id[2]}` : id[1]] = state[1];
      }
      return states;
    },
    stop() {
      for (const pidFile of ["slurmd.pid", "slurmctld.pid", join("munge", "munged.pid")]) {
        const p = join(dir, pidFile);
        if (!existsSync(p)) continue;
        try {
          process.kill(Number(readFileSync(p, "utf8").trim()), "SIGTERM");
        } catch {
          // already gone
        }
      }
    },
  };
  // slurmd registers within a second or two; sbatch before that would wait for the node anyway, but a node that never
  // comes up should fail here with its log, not as a timeout later
  const deadline = Date.now() + 20_000;
  while (!/idle|mixed|alloc/.test(run("sinfo", ["-h", "-o", "%T"]))) {
    if (Date.now() > deadline) throw new Error(`slurmd did not register: ${tail(join(dir, "slurmd.log"))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return cluster;
}

function tail(path: string): string {
  return existsSync(path) ? readFileSync(path, "utf8").split("\n").slice(-15).join("\n") : `(${path} missing)`;
}
