/** Progress with an ETA: a bar on a terminal (cli-progress), one plain line per completed unit otherwise (logs, CI). */
import cliProgress from "cli-progress";

export interface Progress {
  /** `done` units of work of `total` are complete; `label` says what just finished. */
  update(done: number, label: string): void;
  stop(): void;
}

export function createProgress(total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  const start = Date.now();
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: "{bar} {value}/{total} cells×samples | {percentage}% | ETA {eta_formatted} | {label}", stream, hideCursor: true, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { label: "" });
    return { update: (done, label) => bar.update(done, { label }), stop: () => bar.stop() };
  }
  let first: { done: number; at: number } | null = null;
  return {
    update(done, label) {
      const now = Date.now();
      first ??= { done, at: now };
      // the rate over this run only: resumed units done before it do not count toward the ETA
      const rate = done > first.done ? (done - first.done) / (now - first.at) : 0;
      const eta = rate > 0 ? formatDuration((total - done) / rate) : "?";
      stream.write(`[${done}/${total}] ${label} | elapsed ${formatDuration(now - start)} | ETA ${eta}\n`);
    },
    stop() {},
  };
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}
