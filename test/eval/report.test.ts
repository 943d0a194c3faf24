/**
 * The report in a real browser: Debian's chromium (headless, driven by playwright-core) opens
 * report.html from disk with the network cut, and every chart must show an SVG with marks.
 * Skipped with a message where chromium is not installed (`apt-get install -y chromium`).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { testWithData } from "../helpers.js";
import { sharedRun } from "./fixtures.js";

const CHROMIUM = process.env.BRIDGE_CHROMIUM ?? "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const NAME = "report.html renders every chart in headless Chromium, offline";

if (!existsSync(CHROMIUM)) {
  console.log(`  skipped "${NAME}": no ${CHROMIUM}; install it with \`apt-get install -y chromium\` (or set BRIDGE_CHROMIUM)`);
  test.skip(NAME);
} else {
  testWithData(test, NAME, async (dataDir) => {
    const { evaluation } = await sharedRun(dataDir);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    try {
      const page = await browser.newPage();
      const requests: string[] = [];
      await page.route("**/*", (route) => {
        const url = route.request().url();
        if (url.startsWith("file:")) return route.continue();
        requests.push(url);
        return route.abort();
      });
      await page.goto(pathToFileURL(join(evaluation.dir, "report.html")).href);
      const charts = await page.$$eval("section.chart", (sections) =>
        sections.map((s) => {
          const svg = s.querySelector("svg");
          const box = svg?.getBoundingClientRect();
          return {
            id: s.id,
            marks: svg ? svg.querySelectorAll("path, rect, line, circle, text").length : 0,
            dataMarks: svg ? svg.querySelectorAll("g.mark-rect path, g.mark-line path, g.mark-symbol path, g.mark-rect rect, g.mark-text text").length : 0,
            width: box?.width ?? 0,
            height: box?.height ?? 0,
          };
        }),
      );
      assert.equal(
        charts.map((c) => c.id),
        ["separation-histogram", "separation-roc", "snli-confusion", "xnli-confusion", "sts-scatter", "training-curves"],
      );
      for (const c of charts) {
        assert.ok(c.width > 100 && c.height > 100, `${c.id}: drawn at ${c.width}x${c.height}`);
        assert.ok(c.dataMarks > 0, `${c.id}: no data marks in its SVG`);
      }
      const cells = await page.$$eval("table.metrics tbody tr", (rows) => rows.length);
      assert.ok(cells >= 10, `metrics table has ${cells} rows`);
      assert.equal(requests, [], "the report must not reach the network");
    } finally {
      await browser.close();
    }
  });
}

test.run();
