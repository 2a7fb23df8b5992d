/**
 * Progress with an ETA: a bar on a terminal (cli-progress), one plain line per completed unit otherwise (logs, CI).
 * Rows are counted for the reader, but the ETA runs on work: an 8K-token sample costs several times a 1K one, and
 * a row count would promise a sweep ordered short-to-long an hour early.
 */
import cliProgress from "cli-progress";

export interface Done {
  /** Result rows (cells × samples) complete. */
  readonly rows: number;
  /** Work complete, in the unit `createProgress` was given the total of (see `sampleWork`). */
  readonly work: number;
}

export interface Progress {
  update(done: Done, label: string): void;
  stop(): void;
}

/** The relative cost of one sample for every cell: its prefill and decode attention grow with the context. */
export function sampleWork(contextTokens: number): number {
  // the constant stands for the work that does not grow with the context (weights read per decode step)
  return contextTokens + 512;
}

export function createProgress(total: Done, stream: NodeJS.WriteStream = process.stderr): Progress {
  const start = Date.now();
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: "{bar} {rows}/{totalRows} cells×samples | {percentage}% of the work | ETA {eta_formatted} | {label}", stream, hideCursor: true, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total.work, 0, { label: "", rows: 0, totalRows: total.rows });
    return { update: (done, label) => bar.update(done.work, { label, rows: done.rows }), stop: () => bar.stop() };
  }
  let first: { work: number; at: number } | null = null;
  return {
    update(done, label) {
      const now = Date.now();
      first ??= { work: done.work, at: now };
      // the rate over this run only: resumed samples done before it do not count toward the ETA
      const rate = done.work > first.work ? (done.work - first.work) / (now - first.at) : 0;
      const eta = rate > 0 ? formatDuration((total.work - done.work) / rate) : "?";
      stream.write(`[${done.rows}/${total.rows}] ${label} | elapsed ${formatDuration(now - start)} | ETA ${eta}\n`);
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
