/**
 * DuoAttention's published head patterns (github.com/mit-han-lab/duo-attention, `attn_patterns/<model>/<run>/`): the
 * learned gate α of every (layer, KV head) in `full_attention_heads.tsv` — one line per layer, one tab-separated value
 * per KV head — and the run's settings in `config.json` beside it. Both the authors' `load_attn_pattern` and kvpress's
 * `DuoAttentionPress.load_attention_pattern` read the table with `np.loadtxt(..., delimiter="\t")` and clip it to
 * [0, 1]; a higher gate means the head needs its full cache (a retrieval head).
 *
 * `config.json`'s sink_size / recent_size (128 / 256 in every published run) are the sizes the gates were trained with;
 * kvpress deploys those, the authors' evaluation scripts deploy 64 / 256. This policy takes its sizes from its own
 * parameters (README.md), so only the table is read.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { RazorkvError } from "@razorkv/core";

/** A pattern file as the policy uses it. */
export interface DuoPattern {
  /** The file the gates came from. */
  readonly source: string;
  /** [layer][kvHead] gates, clipped to [0, 1]. */
  readonly gates: number[][];
}

/** The file name of the gate table inside a pattern directory. */
export const PATTERN_TABLE = "full_attention_heads.tsv";

/**
 * Parses the text of a `full_attention_heads.tsv`: rows = layers, tab-separated columns = KV heads, every value a
 * finite number, clipped to [0, 1]. Blank lines are skipped (np.loadtxt does too). A RazorkvError names `source`,
 * the line and what was found.
 */
export function parsePatternTable(text: string, source: string): number[][] {
  const rows: number[][] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === "") return;
    const row = line.trim().split("\t").map((cell, c) => {
      const x = Number(cell.trim());
      if (cell.trim() === "" || !Number.isFinite(x)) {
        throw new RazorkvError(`${source}: line ${i + 1}, column ${c + 1}: expected a number, found ${JSON.stringify(cell)}`);
      }
      return Math.min(1, Math.max(0, x));
    });
    if (rows.length > 0 && row.length !== rows[0].length) {
      throw new RazorkvError(`${source}: line ${i + 1}: expected ${rows[0].length} tab-separated gates (one per KV head), found ${row.length}`);
    }
    rows.push(row);
  });
  if (rows.length === 0) throw new RazorkvError(`${source}: expected one line of gates per layer, found no numbers`);
  return rows;
}

/**
 * Reads a DuoAttention pattern: `path` is a pattern directory (its `full_attention_heads.tsv` is read) or the table
 * itself. A RazorkvError names the file when it cannot be read or parsed.
 */
export function readPattern(path: string): DuoPattern {
  let file = path;
  try {
    if (statSync(path).isDirectory()) file = join(path, PATTERN_TABLE);
  } catch (error) {
    throw new RazorkvError(`${path}: cannot read the DuoAttention pattern (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new RazorkvError(`${file}: cannot read the DuoAttention pattern (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return { source: file, gates: parsePatternTable(text, file) };
}

/** Checks the pattern was learned for a model of `numLayers` × `numKvHeads` KV heads; `who` names the caller. */
export function checkPatternShape(pattern: DuoPattern, numLayers: number, numKvHeads: number, who: string): void {
  const rows = pattern.gates.length;
  const cols = pattern.gates[0].length;
  if (rows !== numLayers || cols !== numKvHeads) {
    throw new RazorkvError(
      `${who}: ${pattern.source}: expected ${numLayers} layers × ${numKvHeads} KV heads of gates for this model, found ${rows} × ${cols}`,
    );
  }
}
