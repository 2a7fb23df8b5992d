import { segmentPieces } from "../prompt.js";
import type { Segment } from "../types.js";

/** A segment's characters, for tests that compare prompts as text; it must hold no ids piece. */
export function segmentChars(s: Segment): string {
  return segmentPieces(s)
    .map((p) => {
      if (p.ids !== undefined) throw new Error("expected template and text pieces only");
      return p.template ?? p.text;
    })
    .join("");
}
