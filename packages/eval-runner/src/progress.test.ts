import { afterEach, describe, expect, it, vi } from "vitest";
import { createProgress, formatDuration } from "./progress.js";

function plainStream(): { stream: NodeJS.WriteStream; lines: string[] } {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => lines.push(s.trimEnd()) } as unknown as NodeJS.WriteStream;
  return { stream, lines };
}

describe("plain progress lines", () => {
  afterEach(() => vi.useRealTimers());

  it("count rows but take the ETA from work, measured over this run only", () => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
    const { stream, lines } = plainStream();
    // 40 rows: the first 20 are cheap (1K contexts, 1 work each), the last 20 cost 8 each
    const progress = createProgress({ rows: 40, work: 20 + 160 }, stream);
    progress.update({ rows: 10, work: 10 }, "resumed");
    vi.setSystemTime(60_000);
    progress.update({ rows: 20, work: 20 }, "a");
    // 10 work per minute; 160 work left: 16 minutes (a row count would say 2)
    expect(lines[1]).toBe("[20/40] a | elapsed 1m00s | ETA 16m00s");
    expect(lines[0]).toMatch(/ETA \?$/);
  });

  it("formats durations", () => {
    expect(formatDuration(59_400)).toBe("59s");
    expect(formatDuration(3_725_000)).toBe("1h02m");
  });
});
