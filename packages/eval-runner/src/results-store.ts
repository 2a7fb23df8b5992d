/**
 * results.jsonl is the experiment's only state. Each completed (cell × sample) is one line, appended with a single
 * write of whole lines; a run killed at any moment (SIGKILL included) leaves at worst one partial last line, which
 * the next open cuts off. Rows are keyed by `row.key`, the hash of everything that can change them (experiment.ts
 * rowKey), so a rerun skips what is done, recomputes what an edit changed and never writes a row twice.
 * results.csv and summary.json are derived from it at the end, in sweep order, so an interrupted-and-resumed run
 * and an uninterrupted one produce the same files.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "csv-stringify/sync";
import { RazorkvError } from "@razorkv/core";
import { RESULT_COLUMNS, summarizeRows, withPrefillProducts, type ResultRow, type Summary } from "@razorkv/report";

export class ResultsStore {
  readonly dir: string;
  readonly jsonlPath: string;
  private readonly done = new Map<string, ResultRow>();
  /** Lines results.jsonl holds: rows of this sweep and stale ones (rows without a key, keys no longer asked for). */
  private storedLines = 0;
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
        store.storedLines++;
        let row: ResultRow;
        try {
          row = JSON.parse(line) as ResultRow;
        } catch {
          throw new RazorkvError(`${store.jsonlPath}:${i + 1}: not a JSON result row; move the file away to start over`);
        }
        // a row of an older harness has no key: nothing can match it, so it is recomputed and left out of the csv
        if (typeof row.key !== "string") return;
        // a row from before prefillProducts existed was prefilled in f32 (and keyed as f32 rows still are)
        store.done.set(row.key, withPrefillProducts(row));
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
    const fresh = rows.filter((r) => !this.done.has(r.key));
    if (fresh.length === 0) return;
    this.fd ??= openSync(this.jsonlPath, "a");
    writeSync(this.fd, fresh.map((r) => JSON.stringify(r) + "\n").join(""));
    fsyncSync(this.fd);
    for (const r of fresh) this.done.set(r.key, r);
    this.storedLines += fresh.length;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /**
   * Writes results.csv and summary.json from the rows of `order` (the sweep's keys in sweep order), and rewrites
   * results.jsonl to hold exactly those rows (written aside, then renamed over it: a kill leaves the old file
   * whole). Stored rows whose key is not in the sweep — inputs an edit changed, or an older harness's rows — are
   * stale: they are dropped (`dropped` counts them), so that neither the csv nor the report can show them.
   */
  finalize(experiment: string, order: readonly string[]): { rows: ResultRow[]; summary: Summary; dropped: number } {
    const rows = order.map((k) => this.done.get(k)).filter((r): r is ResultRow => r !== undefined);
    const dropped = this.storedLines - rows.length;
    if (dropped > 0) {
      this.close();
      const aside = `${this.jsonlPath}.tmp`;
      writeFileSync(aside, rows.map((r) => JSON.stringify(r) + "\n").join(""));
      renameSync(aside, this.jsonlPath);
      this.done.clear();
      for (const r of rows) this.done.set(r.key, r);
      this.storedLines = rows.length;
    }
    const csv = stringify(
      rows.map((r) => RESULT_COLUMNS.map((c) => (r as unknown as Record<string, unknown>)[c] ?? "")),
      { header: true, columns: RESULT_COLUMNS as readonly string[] as string[] },
    );
    writeFileSync(join(this.dir, "results.csv"), csv);
    const summary = summarizeRows(rows, experiment);
    writeFileSync(join(this.dir, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
    return { rows, summary, dropped };
  }
}
