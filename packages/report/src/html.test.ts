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
    expect(findings).toMatch(/RazorAttention protected\s+14 of 90 KV heads/);
    expect(findings).toContain('<span class="head">L17·kv2</span>');
    expect(html).toContain("mean NLL, nats per token (lower is better)");
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
