/**
 * Python `str` semantics the benchmarks' scoring scripts rely on, so the TypeScript ports score the same text the
 * same way (checked over all code points against CPython 3.11; newer Unicode characters unknown to 3.11 aside).
 *
 * - `str.split()` / `str.strip()` without arguments use `str.isspace()`: JavaScript's `\s` minus U+FEFF, plus the
 *   separators U+001C–U+001F and U+0085.
 * - `re`'s `\w` on `str` patterns is Unicode-aware: letters, numbers and "_" (so `\b` in "ça" is not between "ç" and
 *   "a"); combining marks are not word characters.
 * - `re`'s `\d` is any decimal digit (Nd), "١٢" and "１２" included.
 * - `len()` and indexing count code points, not UTF-16 units.
 */

const PY_SPACE = "\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_SPACE_RUN = new RegExp(`[${PY_SPACE}]+`, "u");
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, "gu");

/** Python's `s.split()`: runs of whitespace separate, no empty strings. */
export function pySplit(text: string): string[] {
  return text.split(PY_SPACE_RUN).filter((w) => w.length > 0);
}

/** Python's `s.strip()`. */
export function pyStrip(text: string): string {
  return text.replace(PY_STRIP, "");
}

/** A word character of Python's `re` (`\w`), as a regex class body. */
export const PY_WORD_CHAR = "\\p{L}\\p{N}_";

/** Python's `re.findall(r"\d+", text)`. */
export function pyFindNumbers(text: string): string[] {
  return text.match(/\p{Nd}+/gu) ?? [];
}

/** The text as Python sees it: one element per code point. */
export function codePoints(text: string): string[] {
  return Array.from(text);
}

/** Python 3's `round(x)` for a float: to the nearest integer, halves to even (`round(12.5) == 12`). */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff < 0.5) return floor;
  if (diff > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}
