import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { escapeHtml, loadLibraries, scriptJson } from "./html.js";
import { renderReport } from "./render.js";
import { writeFixture } from "./testing/fixture.js";

/** The page without the inlined library builds (whose code mentions URLs it never requests, e.g. SVG namespaces). */
function ownMarkup(html: string): string {
  return html.replace(/<script>\/\* (vega|vega-lite|vega-embed) [^*]*\*\/\n[\s\S]*?<\/script>/g, "<script>/* library */</script>");
}

describe("renderReport", () => {
  const dir = mkdtempSync(join(tmpdir(), "razorkv-report-html-"));
  writeFixture(dir);

  it("writes <dir>/report.html with vega, vega-lite and vega-embed inlined", async () => {
    const path = await renderReport(dir);
    expect(path).toBe(join(dir, "report.html"));
    expect(existsSync(path)).toBe(true);
    const html = readFileSync(path, "utf8");
    for (const lib of loadLibraries()) {
      expect(html).toContain(`/* ${lib.name} ${lib.version}`);
      expect(html).toContain(lib.code.slice(0, 200));
    }
    expect(html).toContain("window.__razorkvRendered");
    expect((html.match(/class="vega-chart"/g) ?? []).length).toBe(10);
  });

  it("references nothing outside the folder: no src attribute, no absolute URL, relative links only", async () => {
    const html = readFileSync(await renderReport(dir), "utf8");
    const own = ownMarkup(html);
    expect((own.match(/<script>\/\* library \*\/<\/script>/g) ?? []).length).toBe(3);
    expect(own).not.toMatch(/https?:\/\//);
    expect(own).not.toMatch(/\ssrc\s*=/i);
    expect(own).not.toMatch(/<link\b/i);
    expect(own).not.toMatch(/url\(/i);
    const hrefs = [...own.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
    expect(new Set(hrefs)).toEqual(new Set(["results.csv", "results.jsonl", "summary.json", "manifest.yaml"]));
  });

  it("answers the questions at a glance: best policy at 0.3 per task, and the protected heads", async () => {
    const html = readFileSync(await renderReport(dir), "utf8");
    const findings = html.slice(html.indexOf('<section id="findings">'), html.indexOf("</section>", html.indexOf('<section id="findings">')));
    expect(findings).toContain("Best policy per task at KV budget 0.3");
    expect(findings).toMatch(/Needle in a haystack, one needle \(niah-single\)[\s\S]*?<span class="policy">razor<\/span> 1\.000/);
    expect(findings).toMatch(/RazorAttention retrieval heads,\s+14 of 90 KV heads protected \(15\.6%; top 14% of KV heads by induction \+ top 1% by echo\)/);
    expect(findings).toContain('<span class="head">L17·kv2</span>');
    expect(html).toContain("mean NLL, nats per token (lower is better)");
  });

  it("shows each comparison's paired test, and says which test and why", async () => {
    const html = readFileSync(await renderReport(dir), "utf8");
    const findings = html.slice(html.indexOf('<section id="findings">'), html.indexOf("</section>", html.indexOf('<section id="findings">')));
    expect(findings).toContain("<h3>Paired comparisons at that budget</h3>");
    expect(findings).toContain("compared <em>sample by sample</em>");
    expect(findings).toContain("<strong>exact McNemar test</strong>");
    expect(findings).toContain("<strong>paired bootstrap</strong>");
    expect(findings).toContain("10,000 resamples from a fixed seed (14");
    expect(findings).toMatch(/<span class="policy">razor<\/span> @ 0\.3 vs <span class="policy">h2o<\/span> @ 0\.3<\/td>\n<td class="num">30<\/td>\n<td class="num">\+0\.\d{3} \[[-+]?\d\.\d{3}, \+0\.\d{3}\]/);
    expect(findings).toMatch(/<span class="policy">h2o<\/span> @ 0\.3 vs <span class="policy">full<\/span> @ 1<\/td>/);
    expect(findings).toMatch(/paired test vs \w+ \(exact McNemar, n = 30\): [-+]\d\.\d{3} \[/);
  });

  it("lists the cells that could not run, with counts and reasons, and the raw table has status and reason", async () => {
    const html = readFileSync(await renderReport(dir), "utf8");
    const start = html.indexOf('<section id="infeasible">');
    const section = html.slice(start, html.indexOf("</section>", start));
    expect(section).toContain("<h2>Cells that could not run</h2>");
    expect(section).toMatch(/4 cells could not run on any sample and\s+2 on some \(70 infeasible rows in results\.jsonl\)/);
    expect(section).toMatch(/Passkey retrieval \(passkey\)<\/td>\n<td><span class="policy">razor<\/span><\/td>\n<td class="num">0\.2<\/td>\n<td class="num">6<\/td>\n<td class="num">6<\/td>\n<td>passkey sample passkey\/seed7\/L1024\/d0\/0, cell razor@0\.2: kvBudget 0\.2 is below the 0\.21/);
    expect(html).toContain("1134 result rows (70 infeasible)");
    const payload = JSON.parse(/<script type="application\/json" id="razorkv-data">([\s\S]*?)<\/script>/.exec(html)![1]) as {
      tables: { raw: { columns: { key: string }[]; rows: unknown[][] } };
    };
    const keys = payload.tables.raw.columns.map((c) => c.key);
    expect(keys).toContain("status");
    expect(keys).toContain("reason");
    const infeasible = payload.tables.raw.rows.find((r) => r[keys.indexOf("status")] === "infeasible")!;
    expect(infeasible[keys.indexOf("score")]).toBeNull();
    expect(String(infeasible[keys.indexOf("reason")])).toMatch(/is below the/);
  });
});

describe("escaping", () => {
  it("escapes text and keeps inline JSON from closing its script", () => {
    expect(escapeHtml(`<a href="x">&'`)).toBe("&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    const json = scriptJson({ prediction: "</script><script>alert(1)</script>" });
    expect(json).not.toContain("</script");
    expect(JSON.parse(json)).toEqual({ prediction: "</script><script>alert(1)</script>" });
  });
});
