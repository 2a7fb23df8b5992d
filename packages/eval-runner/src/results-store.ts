/**
 * results.jsonl is the experiment's only state. Each completed (cell × sample) is one line, appended with a single
 * write of whole lines; a run killed at any moment (SIGKILL included) leaves at worst one partial last line, which
 * the next open cuts off. Rows are keyed, so a rerun skips what is done and never writes a row twice.
 * results.csv and summary.json are derived from it at the end, in sweep order, so an interrupted-and-resumed run
 * and an uninterrupted one produce the same files.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "csv-stringify/sync";
import { RazorkvError } from "@razorkv/core";
import { RESULT_COLUMNS, summarizeRows, type ResultRow, type Summary } from "@razorkv/report";

export function rowKey(row: Pick<ResultRow, "model" | "task" | "sampleId" | "mode" | "cell">): string {
  return `${row.model}\u0000${row.task}\u0000${row.sampleId}\u0000${row.mode}\u0000${row.cell}`;
}

export class ResultsStore {
  readonly dir: string;
  readonly jsonlPath: string;
  private readonly done = new Map<string, ResultRow>();
  private fd: number | null = null;

  private constructor(dir: string) {
    this.dir = dir;
    this.jsonlPath = join(dir, "results.jsonl");
  }

  /** Opens (creating) `dir`, reading the rows already completed there. */
  static open(dir: string): ResultsStore {
    mkdirSync(dir, { recursive: true });
    const store = new ResultsStore(dir);
    if (existsSync(store.jsonlPath)) {
      const text = readFileSync(store.jsonlPath, "utf8");
      const complete = text.lastIndexOf("\n") + 1;
      if (complete < Buffer.byteLength(text)) {
        // an interrupted append: keep every whole line, drop the torn tail
        truncateSync(store.jsonlPath, Buffer.byteLength(text.slice(0, complete)));
      }
      const lines = text.slice(0, complete).split("\n");
      lines.forEach((line, i) => {
        if (line.trim() === "") return;
        let row: ResultRow;
        try {
          row = JSON.parse(line) as ResultRow;
        } catch {
          throw new RazorkvError(`${store.jsonlPath}:${i + 1}: not a JSON result row; move the file away to start over`);
        }
        store.done.set(rowKey(row), row);
      });
    }
    return store;
  }

  get completedCount(): number {
    return this.done.size;
  }

  has(key: string): boolean {
    return this.done.has(key);
  }

  /** Appends rows with one write call; rows already present are skipped. */
  append(rows: readonly ResultRow[]): void {
    const fresh = rows.filter((r) => !this.done.has(rowKey(r)));
    if (fresh.length === 0) return;
    this.fd ??= openSync(this.jsonlPath, "a");
    writeSync(this.fd, fresh.map((r) => JSON.stringify(r) + "\n").join(""));
    fsyncSync(this.fd);
    for (const r of fresh) this.done.set(rowKey(r), r);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /**
   * Writes results.csv and summary.json from the rows of `order` (the sweep's keys in sweep order); rows of
   * keys outside the sweep (an edited manifest) are left out.
   */
  finalize(experiment: string, order: readonly string[]): { rows: ResultRow[]; summary: Summary } {
    const rows = order.map((k) => this.done.get(k)).filter((r): r is ResultRow => r !== undefined);
    const csv = stringify(rows.map((r) => RESULT_COLUMNS.map((c) => r[c] ?? "")), { header: true, columns: RESULT_COLUMNS as string[] });
    writeFileSync(join(this.dir, "results.csv"), csv);
    const summary = summarizeRows(rows, experiment);
    writeFileSync(join(this.dir, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
    return { rows, summary };
  }
}
