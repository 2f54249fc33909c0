// @vitest-environment node

import { COMPARED_METRICS } from "@proxyscale/core";
import { storeDailyRollups } from "@proxyscale/db/testing";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildAdmin,
  chromiumAvailable,
  cspViolationsOf,
  type Harness,
  recordCspViolations,
  rest,
  screenshots,
  seriousViolations,
  startHarness,
} from "./harness.ts";

interface ProxyView {
  id: string;
  name: string;
}
interface EffectivePolicy {
  source: string;
  policy: { minReplicas: number; strategy: string; targetRequestRate: number };
}

/** Two hours at one-minute steps: a daily-like swell with a burst, so supply lags and overshoots demand. */
const TRACE_CSV = [
  "t_seconds,requests",
  ...Array.from({ length: 120 }, (_, i) => {
    const burst = i >= 60 && i < 70 ? 6_000 : 0;
    return `${i * 60},${Math.round(3_000 + 2_500 * Math.sin(i / 12) + burst)}`;
  }),
].join("\n");

/**
 * Picks the CSV source. A click, then the URL and the checked state: the radio is controlled by the address
 * (`?source=csv`), so it turns checked only once the router has navigated, which playwright's check() does not
 * wait for on a loaded machine.
 */
async function chooseCsvTrace(page: Page) {
  const radio = page.getByRole("radio", { name: "A CSV trace you upload" });
  await radio.click();
  await page.waitForURL(/source=csv/);
  await expect.poll(() => radio.isChecked()).toBe(true);
}

async function uploadTrace(page: Page) {
  await chooseCsvTrace(page);
  await page
    .getByLabel(/^CSV trace/)
    .setInputFiles({ name: "swell.csv", mimeType: "text/csv", buffer: Buffer.from(TRACE_CSV) });
  await page.getByText("swell.csv: 120 steps of 60 s", { exact: false }).waitFor();
}

const run = (page: Page) => page.getByRole("button", { name: "Run simulation" }).click();
const policyB = (page: Page) => page.getByRole("form", { name: "Policy B" });

describe.skipIf(!chromiumAvailable())("the simulator page in Chromium against the real server", () => {
  let harness: Harness;
  let context: BrowserContext;
  let page: Page;
  let demo: ProxyView;
  let before: EffectivePolicy;
  const cspViolations: string[] = [];

  beforeAll(async () => {
    buildAdmin();
    harness = await startHarness();
    context = await harness.browser.newContext({ viewport: { width: 1280, height: 900 } });
    // Every Content-Security-Policy violation on the page; the last test asserts there were none.
    await recordCspViolations(context);
    page = await context.newPage();
    const proxies = await rest<{ items: ProxyView[] }>(harness.url, harness.adminToken, "GET", "/proxies");
    demo = proxies.items.find((proxy) => proxy.name === "demo-edge")!;
    expect(demo, "the demo proxy is registered at start").toBeDefined();
    before = await rest<EffectivePolicy>(
      harness.url,
      harness.adminToken,
      "GET",
      `/proxy/scaling/policies/${demo.id}`,
    );
  }, 180_000);

  afterAll(async () => {
    await context?.close();
    await harness?.close();
  });

  it("opens from the proxy page's Simulate tab with that proxy picked, and from the main navigation", async () => {
    await page.goto(`${harness.url}/#token=${harness.adminToken}`);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Simulator" }).click();
    await page.waitForURL("**/simulate");
    await page.getByRole("heading", { name: "Simulator", level: 1 }).waitFor();

    await page.goto(`${harness.url}/proxies/${demo.id}`);
    await page.getByRole("link", { name: "Simulate", exact: true }).click();
    await page.waitForURL(`**/simulate?proxy=${demo.id}`);
    expect(await page.getByLabel(/^Proxy/).inputValue()).toBe(demo.id);
    // Both policies start from the proxy's policy in force.
    for (const side of ["A", "B"])
      expect(
        await page
          .getByRole("form", { name: `Policy ${side}` })
          .getByLabel("Minimum replicas")
          .inputValue(),
      ).toBe(String(before.policy.minReplicas));
  });

  it("refuses a malformed CSV with core's parser's line and reason, and keeps Run disabled", async () => {
    await chooseCsvTrace(page);
    const input = page.getByLabel(/^CSV trace/);
    await input.setInputFiles({
      name: "bad.csv",
      mimeType: "text/csv",
      buffer: Buffer.from("t_seconds,requests\n0,5\n60,-1\n"),
    });
    const error = page.locator("#simulate-csv-error");
    await error.waitFor();
    expect(await error.textContent()).toBe("trace: trace line 3: requests must be a count ≥ 0");
    expect(await input.getAttribute("aria-invalid")).toBe("true");
    expect(await page.getByRole("button", { name: "Run simulation" }).isDisabled()).toBe(true);
    await page.getByText("Upload a valid CSV trace first.").waitFor();
  });

  it("shows the server's 400 under the field it names", async () => {
    await uploadTrace(page);
    await page.getByLabel("Name of policy B").fill("oracle");
    await run(page);
    const error = page.locator("#simulate-name-B-error");
    await error.waitFor();
    expect(await error.textContent()).toContain("policies.1.name:");
    expect(await error.textContent()).toContain('not "oracle"');
    expect(await page.getByLabel("Name of policy B").getAttribute("aria-invalid")).toBe("true");
  });

  it("runs an uploaded trace through the proxy's policy and an edited second policy: both supplies charted, metrics with the oracle row", async () => {
    expect(before.policy.strategy, "policy B below changes the strategy").not.toBe("targetTracking");
    await page.getByLabel("Name of policy B").fill("tracking");
    await policyB(page).getByLabel("Strategy", { exact: true }).selectOption("targetTracking");
    await policyB(page).getByLabel("Target request rate (per replica)").fill("40");
    await policyB(page).getByTestId("policy-diff").waitFor();
    await run(page);

    const results = page.getByRole("region", { name: "Results" });
    await results.waitFor();
    await page.locator("[data-testid=simulation-chart] .chart-area[data-drawn] canvas").waitFor();
    expect(
      Number(await page.locator("[data-testid=simulation-chart] .chart-area").getAttribute("data-points")),
    ).toBeGreaterThan(1);
    const legend = page.locator("[data-testid=simulation-chart] .u-legend");
    for (const label of ["demand req/s", "supply req/s: current", "supply req/s: tracking"])
      await legend.getByText(label, { exact: true }).waitFor();

    const table = page.getByTestId("simulation-metrics");
    const headers = await table.locator("thead th").allTextContents();
    expect(headers).toEqual(["row", "kind", ...COMPARED_METRICS, "apply"]);
    const rows = await table.locator("tbody th[scope=row]").allTextContents();
    expect(rows).toEqual(["current", "tracking", "hpa-defaults", "oracle"]);
    const metricsOf = (row: string) =>
      table
        .locator("tbody tr", { has: page.locator(`th:text-is("${row}")`) })
        .locator("td")
        .allTextContents();
    // The edit reached the simulation: the two policies scale differently.
    expect(await metricsOf("tracking")).not.toEqual(await metricsOf("current"));
    const oracle = await table.locator("tbody tr[data-row-kind=oracle] td").allTextContents();
    expect(oracle.slice(1, 1 + COMPARED_METRICS.length).every((cell) => Number.isFinite(Number(cell)))).toBe(
      true,
    );
    await screenshots(page, "simulator");
    const violations = await seriousViolations(page);
    expect(violations, `axe on the simulator: ${JSON.stringify(violations)}`).toEqual([]);
  });

  it("runs under the server's Content-Security-Policy without a violation", async () => {
    cspViolations.push(...(await cspViolationsOf(page)));
    expect(cspViolations).toEqual([]);
  });

  it("applies the edited policy to the proxy in one click as an admin", async () => {
    await page.getByRole("button", { name: "Apply tracking to demo-edge" }).click();
    await page.getByText("Applied: tracking is now demo-edge's own policy.").waitFor();
    const after = await rest<EffectivePolicy>(
      harness.url,
      harness.adminToken,
      "GET",
      `/proxy/scaling/policies/${demo.id}`,
    );
    expect(after.source).toBe("proxy");
    expect(after.policy).toMatchObject({ strategy: "targetTracking", targetRequestRate: 40 });
  });

  it("replays a proxy's stored per-minute history over the chosen window", async () => {
    const proxy = await rest<ProxyView>(harness.url, harness.adminToken, "POST", "/proxies", {
      name: "history-edge",
    });
    await storeDailyRollups(harness.server.database, proxy.id, 6 * 60);
    await page.goto(`${harness.url}/simulate?proxy=${proxy.id}&source=history&window=6h`);
    expect(await page.getByLabel("Window, ending now").inputValue()).toBe("6h");
    await run(page);
    const results = page.getByRole("region", { name: "Results" });
    await results.locator("tbody tr[data-row-kind=oracle]").waitFor();
    const summary = (await results.locator("p").first().textContent()) ?? "";
    expect(summary).toMatch(/^36\d steps of 60 s/);
    // The six stored hours fill the window; at most the minute in progress has no rollup yet.
    const gaps = Number(summary.match(/(\d+) minutes of the window had no rollup/)?.[1] ?? 0);
    expect(gaps).toBeLessThanOrEqual(1);
    await page.locator("[data-testid=simulation-chart] .chart-area[data-drawn] canvas").waitFor();
  });

  it("gives an operator the simulation but not Apply, and says why", async () => {
    const operator = await harness.token({ sub: "operator-e2e", role: "operator" });
    const own = await rest<ProxyView>(harness.url, operator, "POST", "/proxies", { name: "operator-edge" });
    const other = await harness.browser.newContext({ viewport: { width: 1280, height: 900 } });
    const tab = await other.newPage();
    await tab.goto(`${harness.url}/#token=${operator}`);
    await tab.getByTestId("who-sub").waitFor();
    // The per-proxy address is a deep link to the simulator with the proxy picked.
    await tab.goto(`${harness.url}/proxies/${own.id}/simulate`);
    await tab.waitForURL(`**/simulate?proxy=${own.id}`);
    await uploadTrace(tab);
    await run(tab);
    await tab.locator("tbody tr[data-row-kind=oracle]").waitFor();
    const apply = tab.getByRole("button", { name: /^Apply current/ });
    expect(await apply.isDisabled()).toBe(true);
    const reason = await apply.getAttribute("aria-describedby");
    expect(await tab.locator(`[id="${reason}"]`).textContent()).toBe(
      "Applying a policy needs role admin; you are signed in as operator.",
    );
    await other.close();
  });
});
