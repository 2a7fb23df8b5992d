/**
 * The report in a real browser: Debian's chromium driven by playwright-core loads report.html from disk with every
 * non-file request aborted, and every chart must draw with data marks, with no console error and no failed request.
 * The screenshot lands in test-output/report.png for a human to look at. Under CI a missing chromium fails the test
 * (.ci/run installs it); elsewhere the test is skipped with a warning.
 */
import { existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderReport } from "./render.js";
import { writeFixture } from "./testing/fixture.js";

const CHROMIUM = process.env.RAZORKV_CHROMIUM ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
const inCi = Boolean(process.env.CI);
const OUT = fileURLToPath(new URL("../test-output/", import.meta.url));
const REPO = fileURLToPath(new URL("../../../", import.meta.url));

if (!haveChromium && !inCi) {
  console.warn(`\n*** report browser test SKIPPED: no chromium at ${CHROMIUM} (apt-get install chromium, or set RAZORKV_CHROMIUM) ***\n`);
}

interface ChartCheck {
  readonly id: string;
  readonly svg: boolean;
  readonly dataMarks: number;
  readonly emptyMarkGroups: number;
}

interface OfflineView {
  readonly page: Page;
  readonly chartCount: number;
  readonly charts: readonly ChartCheck[];
  readonly datasetSizes: readonly number[];
  readonly consoleErrors: readonly string[];
  readonly pageErrors: readonly string[];
  readonly failed: readonly string[];
  readonly offFile: readonly string[];
}

/** Opens report.html with every non-file request aborted and waits for every chart to render. */
async function openOffline(browser: Browser, reportPath: string): Promise<OfflineView> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  const failed: string[] = [];
  const offFile: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") consoleErrors.push(msg.text());
  });
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("requestfailed", (request) => failed.push(`${request.url()} (${request.failure()?.errorText ?? "?"})`));
  page.on("request", (request) => {
    if (!request.url().startsWith("file:")) offFile.push(request.url());
  });
  await page.route("**", (route) => (route.request().url().startsWith("file:") ? route.continue() : route.abort("blockedbyclient")));

  await page.goto(pathToFileURL(reportPath).href, { waitUntil: "load" });
  const chartCount = await page.evaluate(() => (globalThis as unknown as { __razorkvRendered: Promise<number> }).__razorkvRendered);

  const charts: ChartCheck[] = await page.$$eval(".vega-chart", (elements) =>
    elements.map((el) => {
      const svg = el.querySelector("svg");
      const groups = svg ? [...svg.querySelectorAll("g.role-mark")] : [];
      return {
        id: el.id,
        svg: svg !== null,
        // role-mark groups hold the data marks (axes, legends and titles have roles of their own)
        dataMarks: groups.reduce((n, g) => n + g.children.length, 0),
        emptyMarkGroups: groups.filter((g) => g.children.length === 0).length,
      };
    }),
  );
  // the Vega views' own datasets: every chart's source data is non-empty
  const datasetSizes: number[] = await page.evaluate(() => {
    const views = (globalThis as unknown as { __razorkvViews: { getState(o: object): { data: Record<string, unknown[]> } }[] }).__razorkvViews;
    return views.map((view) => {
      const data = view.getState({ data: (name: string) => name.startsWith("data_") || name === "source_0", signals: () => false }).data;
      return Math.max(0, ...Object.values(data).map((values) => (Array.isArray(values) ? values.length : 0)));
    });
  });
  return { page, chartCount, charts, datasetSizes, consoleErrors, pageErrors, failed, offFile };
}

/** Every chart drew data marks from a non-empty dataset; nothing failed and nothing left the file. */
function expectDrawnOffline(view: OfflineView): void {
  expect(view.chartCount).toBe(view.charts.length);
  for (const chart of view.charts) {
    expect(chart.svg, `${chart.id} has an SVG`).toBe(true);
    expect(chart.dataMarks, `${chart.id} has data marks`).toBeGreaterThan(0);
    expect(chart.emptyMarkGroups, `${chart.id} has no empty mark layer`).toBe(0);
  }
  for (const [i, size] of view.datasetSizes.entries()) expect(size, `chart-${i} dataset`).toBeGreaterThan(0);
  expect(view.consoleErrors).toEqual([]);
  expect(view.pageErrors).toEqual([]);
  expect(view.failed).toEqual([]);
  expect(view.offFile).toEqual([]);
}

describe.skipIf(!haveChromium && !inCi)("report.html in headless Chromium", () => {
  let browser: Browser;

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`CI is set but there is no chromium at ${CHROMIUM}: install Debian's chromium package (.ci/run does)`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  it("draws every chart offline, with no console error and no request leaving the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "razorkv-report-browser-"));
    writeFixture(dir);
    const view = await openOffline(browser, await renderReport(dir));
    const { page } = view;

    mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: join(OUT, "report.png"), fullPage: true });
    // a second look at the top: what a reader sees first
    await page.screenshot({ path: join(OUT, "report-top.png") });

    expect(view.charts.length).toBeGreaterThanOrEqual(10);
    expectDrawnOffline(view);

    // the tables: sortable by clicking a header
    const rawRows = await page.locator("#raw-table tbody tr").count();
    expect(rawRows).toBe(25);
    await page.locator("#raw-table th button", { hasText: /^score$/ }).click();
    await page.locator("#raw-table th button", { hasText: /^score$/ }).click();
    const scoreColumn = await page.locator("#raw-table th button").evaluateAll((buttons) => buttons.findIndex((b) => b.textContent === "score"));
    const firstScore = await page.locator("#raw-table tbody tr").first().locator("td").nth(scoreColumn).textContent();
    expect(Number(firstScore)).toBeGreaterThan(1); // descending: an NLL (≈ 3) sorts above every 0/1 score
    await page.close();
  }, 120_000);

  // the reproduction reports committed under reports/ open as they are, from disk
  it.each(["razor-vs-baselines", "razor-ablations"])("the committed reports/%s/report.html draws offline", async (name) => {
    const reportPath = join(REPO, "reports", name, "report.html");
    expect(existsSync(reportPath), reportPath).toBe(true);
    const view = await openOffline(browser, reportPath);
    expect(view.charts.length).toBeGreaterThanOrEqual(8);
    expectDrawnOffline(view);
    await view.page.close();
  }, 120_000);
});
