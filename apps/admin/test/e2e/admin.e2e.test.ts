// @vitest-environment node
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { haproxyExposition } from "@proxyscale/core/testing";
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
  currentReplicas: number;
}

const runs = chromiumAvailable();

describe.skipIf(!runs)("the admin UI in Chromium against the real server", () => {
  let harness: Harness;
  let context: BrowserContext;
  let page: Page;
  let demo: ProxyView;
  const cspViolations: string[] = [];

  beforeAll(async () => {
    buildAdmin();
    // Rollups off: the history pushed below (older than the start-up rollup) stays visible as raw samples.
    harness = await startHarness({ retention: false });
    context = await harness.browser.newContext({ viewport: { width: 1280, height: 900 } });
    // Every Content-Security-Policy violation on any page of the run; the last test asserts there were none.
    await recordCspViolations(context);
    page = await context.newPage();
    const proxies = await rest<{ items: ProxyView[] }>(harness.url, harness.adminToken, "GET", "/proxies");
    demo = proxies.items.find((proxy) => proxy.name === "demo-edge")!;
    expect(demo, "the demo proxy is registered at start").toBeDefined();
    // A quarter hour of history besides the demo workers' own pushes, so the charts have a shape to show.
    const now = Date.now();
    const samples = Array.from({ length: 300 }, (_, i) => {
      const load = 5 + 6 * (1 + Math.sin(i / 25));
      return {
        cpuPercent: load * 4,
        memoryPercent: 30 + load,
        requestRate: load * 8,
        avgLatencyMs: 5 + load,
        errorRatePercent: 0.2,
        replicas: 1,
        recordedAt: now - 15 * 60_000 + i * 3_000,
      };
    });
    await rest(harness.url, harness.adminToken, "POST", `/proxy/scaling/metrics/${demo.id}/batch`, {
      samples,
    });
  }, 180_000);

  afterAll(async () => {
    await context?.close();
    await harness?.close();
  });

  async function expectAccessible(name: string) {
    const violations = await seriousViolations(page);
    expect(violations, `axe on the ${name} page: ${JSON.stringify(violations)}`).toEqual([]);
  }

  it("signs in through the #token= link, takes the token out of the address bar and shows who is signed in", async () => {
    await page.goto(`${harness.url}/#token=${harness.adminToken}`);
    await page.getByTestId("who-sub").waitFor();
    expect(await page.getByTestId("who-sub").textContent()).toBe("admin");
    expect(await page.locator("header .who").textContent()).toContain("admin");
    expect(page.url()).not.toContain("token");
  });

  it("shows the demo fleet", async () => {
    const row = page.locator("table.fleet tbody tr", { hasText: "demo-edge" });
    await row.waitFor();
    expect(await row.textContent()).toMatch(/demo-edge.*healthy/);
    await row.locator(".sparkline canvas").waitFor();
    await expectAccessible("fleet");
    await screenshots(page, "fleet");
  });

  it("opens demo-edge and draws its charts with data", async () => {
    await page.getByRole("link", { name: "demo-edge" }).click();
    await page.waitForURL(`**/proxies/${demo.id}`);
    // The demo's workers push metrics every second; the charts appear once samples exist.
    await page
      .locator("[data-testid=charts] .chart-area[data-drawn] canvas")
      .first()
      .waitFor({ timeout: 30_000 });
    expect(await page.locator("[data-testid=charts] figure").count()).toBeGreaterThanOrEqual(6);
    // The thresholds are level lines: the legend gives the policy's values.
    const { policy } = await rest<{ policy: { scaleUpThreshold: number; scaleDownThreshold: number } }>(
      harness.url,
      harness.adminToken,
      "GET",
      `/proxy/scaling/policies/${demo.id}`,
    );
    const legend = await page
      .locator("[data-testid=charts] figure")
      .first()
      .locator(".u-legend")
      .textContent();
    expect(legend).toContain(`scaleUpThreshold${policy.scaleUpThreshold}`);
    expect(legend).toContain(`scaleDownThreshold${policy.scaleDownThreshold}`);
    // The summary is asked for once the range has answered; it still arrives without a reload.
    await page.getByTestId("summary").waitFor();
    expect(await page.getByTestId("summary").textContent()).toContain("Load score avg / max");
    await page.getByRole("button", { name: "15m" }).click();
    await page.waitForURL(/range=15m/);
    await page.locator("[data-testid=decisions] li").first().waitFor({ timeout: 30_000 });
    await expectAccessible("proxy");
    await screenshots(page, "proxy");
  });

  it("refuses an invalid policy value in place and saves a valid one, which the audit log shows", async () => {
    await page.getByRole("link", { name: "Policy", exact: true }).click();
    await page.waitForURL(`**/proxies/${demo.id}/policy`);
    const min = page.getByLabel("Minimum replicas");
    await min.fill("-1");
    const error = page.locator("#field-minReplicas-error");
    await error.waitFor();
    expect(await error.textContent()).toContain("must be ≥ 0");
    expect(await min.getAttribute("aria-invalid")).toBe("true");
    expect(await page.getByRole("button", { name: /Save policy/ }).isDisabled()).toBe(true);
    await expectAccessible("policy editor (with an error)");

    await min.fill("1");
    await page.getByLabel("Scale-down cooldown (s)").fill("42");
    const diff = page.getByTestId("policy-diff");
    await diff.waitFor();
    expect(await diff.textContent()).toContain("scaleDownCooldownSeconds");
    await screenshots(page, "policy");
    await page.getByRole("button", { name: /Save policy/ }).click();
    await page.getByText("Saved: the proxy's own policy is now in force.").waitFor();
    const saved = await rest<{ policy: { scaleDownCooldownSeconds: number }; source: string }>(
      harness.url,
      harness.adminToken,
      "GET",
      `/proxy/scaling/policies/${demo.id}`,
    );
    expect(saved).toMatchObject({ source: "proxy", policy: { scaleDownCooldownSeconds: 42 } });

    await page.getByRole("link", { name: "Audit", exact: true }).click();
    await page.waitForURL(`**/audit?proxy=${demo.id}`);
    const entry = page.locator("[data-testid=audit] tbody tr", { hasText: "policy" }).first();
    await entry.waitFor();
    expect(await entry.textContent()).toContain("admin");
    await expectAccessible("audit log");
    await screenshots(page, "audit");
  });

  it("scales demo-edge by hand after a confirmation and shows the event reach completed without a reload", async () => {
    await page.goto(`${harness.url}/proxies/${demo.id}/operate`);
    await page.evaluate(() => {
      (window as unknown as { notReloaded: boolean }).notReloaded = true;
    });
    const current = (await rest<ProxyView>(harness.url, harness.adminToken, "GET", `/proxies/${demo.id}`))
      .currentReplicas;
    const target = current === 1 ? 2 : 1;
    await page.getByLabel("Replicas").fill(String(target));
    await page.getByRole("button", { name: "Scale…" }).click();
    await page.getByRole("button", { name: `Confirm scale to ${target}` }).click();
    const created = page.getByText(/Event .* created/);
    await created.waitFor();
    const eventId = (await created.textContent())!.match(/Event (\S+) created/)![1]!;
    const status = page.locator(`tr[data-event-id="${eventId}"] [data-testid=event-status]`);
    await expect.poll(() => status.textContent(), { timeout: 30_000 }).toBe("completed");
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(
      true,
    );
    await expectAccessible("operate");
    await screenshots(page, "operate");
  });

  it("switches demo-edge's mode to dryRun and back to auto", async () => {
    const modeOf = async () =>
      (
        await rest<{ policy: { mode: string } }>(
          harness.url,
          harness.adminToken,
          "GET",
          `/proxy/scaling/policies/${demo.id}`,
        )
      ).policy.mode;
    await page.getByRole("radio", { name: /^dryRun/ }).click();
    await expect.poll(modeOf, { timeout: 10_000 }).toBe("dryRun");
    await page.getByRole("group", { name: "Mode: dryRun" }).waitFor();
    await page.getByRole("radio", { name: /^auto/ }).click();
    await expect.poll(modeOf, { timeout: 10_000 }).toBe("auto");
  });

  it("reaches an event marker by keyboard, and focusing it shows the event's tooltip", async () => {
    await page.goto(`${harness.url}/proxies/${demo.id}`);
    await page.locator("[data-testid=charts] .chart-marker").first().waitFor();
    // Tab through the page until a marker has focus (the manual scale above made at least one event).
    await expect
      .poll(
        async () => {
          await page.keyboard.press("Tab");
          return page.evaluate(() => document.activeElement?.classList.contains("chart-marker") ?? false);
        },
        { timeout: 20_000, interval: 1 },
      )
      .toBe(true);
    const label = await page.evaluate(() => document.activeElement?.getAttribute("aria-label"));
    const tip = page.getByRole("tooltip");
    await tip.waitFor();
    expect(await tip.textContent()).toBe(label);
    expect(label).toMatch(/\d+ → \d+ \(\w+\): \S/);
  });

  it("shows a decision live when metrics are pushed through the API", async () => {
    // A proxy of its own, with no workers pushing: the only decision is the one this push causes.
    const proxy = await rest<ProxyView>(harness.url, harness.adminToken, "POST", "/proxies", {
      name: "e2e-live",
    });
    await page.goto(`${harness.url}/proxies/${proxy.id}`);
    await page.getByText("No decisions yet").waitFor();
    await expect
      .poll(() => page.getByTestId("live-status").textContent(), { timeout: 10_000 })
      .toBe("pending");
    await page.evaluate(() => {
      (window as unknown as { notReloaded: boolean }).notReloaded = true;
    });
    await rest(harness.url, harness.adminToken, "POST", `/proxy/scaling/metrics/${proxy.id}`, {
      cpuPercent: 95,
      memoryPercent: 90,
      requestRate: 5000,
      avgLatencyMs: 300,
      errorRatePercent: 1,
    });
    await page.locator("[data-testid=decisions] li").first().waitFor({ timeout: 5_000 });
    expect(await page.locator("[data-testid=decisions] li .sentence").first().textContent()).not.toBe("");
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(
      true,
    );
  });

  it("overlays actual and forecast request rate, past and future, with a now line, on a predictive proxy", async () => {
    const predictive = async (name: string, rollupMinutes: number) => {
      const proxy = await rest<ProxyView>(harness.url, harness.adminToken, "POST", "/proxies", { name });
      await rest(harness.url, harness.adminToken, "POST", `/proxy/scaling/policies/${proxy.id}`, {
        strategy: "predictive",
        mode: "forecastOnly",
        targetRequestRate: 100,
        maxReplicas: 10,
      });
      await storeDailyRollups(harness.server.database, proxy.id, rollupMinutes);
      return proxy;
    };
    const seasonal = await predictive("e2e-predictive", 2 * 1440);
    await page.goto(`${harness.url}/proxies/${seasonal.id}`);
    const chart = page.locator("[data-testid=forecast] .chart-area[data-drawn]");
    await chart.locator("canvas").waitFor({ timeout: 20_000 });
    const legend = (label: string) =>
      page
        .locator("[data-testid=forecast] tr.u-series")
        .filter({ has: page.locator(".u-label", { hasText: new RegExp(`^${label}$`) }) })
        .locator(".u-value");
    const over = (await page.locator("[data-testid=forecast] .u-over").boundingBox())!;
    // Near the right edge: the future, forecast only. Near the left edge: the past hour, actual and forecast.
    await page.mouse.move(over.x + over.width * 0.97, over.y + over.height / 2);
    await expect.poll(() => legend("forecast").textContent()).toMatch(/\d/);
    expect(await legend("actual").textContent()).not.toMatch(/\d/);
    await page.mouse.move(over.x + over.width * 0.04, over.y + over.height / 2);
    await expect.poll(() => legend("actual").textContent()).toMatch(/\d/);
    expect(await legend("forecast").textContent()).toMatch(/\d/);
    expect(await legend("now").count()).toBe(1);
    await expectAccessible("proxy with a forecast");
    await screenshots(page, "proxy-forecast");

    const young = await predictive("e2e-predictive-young", 120);
    await page.goto(`${harness.url}/proxies/${young.id}`);
    const note = page.getByTestId("forecast-note");
    await note.waitFor();
    expect(await note.textContent()).toContain("not enough history for a forecast (2 h of 24 h)");
    expect(await page.locator("[data-testid=forecast] canvas").count()).toBe(0);
  });

  it("shows a scraped proxy's source and each target's last scrape on its page", async () => {
    let served = 0;
    const exporter = createHttpServer((_req, res) => {
      served += 5;
      res.end(haproxyExposition(served));
    });
    await new Promise<void>((resolve) => exporter.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(exporter.address() as AddressInfo).port}/metrics`;
      const scraped = await rest<ProxyView>(harness.url, harness.adminToken, "POST", "/proxies", {
        name: "e2e-scraped",
        metricsSource: {
          kind: "scrape",
          intervalSeconds: 1,
          timeoutMs: 500,
          mapping: "haproxy",
          targets: { static: [{ instance: "edge-1", url }] },
        },
      });
      await page.goto(`${harness.url}/proxies/${scraped.id}`);
      expect(await page.getByTestId("metrics-source").textContent()).toBe("scrape every 1 s (haproxy)");
      // The first scrape has no rates yet; the next stores a sample, and the table follows live.
      const row = page.locator("[data-testid=source-health] tr[data-target=edge-1]");
      await expect.poll(() => row.textContent(), { timeout: 20_000 }).toMatch(/edge-1.*yesyes/);
      expect(await row.textContent()).toContain(url);
      await expectAccessible("proxy with a scrape source");
    } finally {
      await new Promise((resolve) => exporter.close(resolve));
    }
  });

  it("sends a rejected token back to sign-in with the reason", async () => {
    const forged = await (async () => {
      const { signToken } = await import("@proxyscale/api");
      return signToken({ sub: "mallory", role: "admin", tier: "pro", secret: "x".repeat(48) });
    })();
    const other = await harness.browser.newContext({ viewport: { width: 1280, height: 900 } });
    const tab = await other.newPage();
    await tab.goto(`${harness.url}/#token=${forged}`);
    const reason = tab.getByTestId("sign-in-reason");
    await reason.waitFor();
    expect(await reason.textContent()).toContain("the server rejected your token");
    const previous = page;
    page = tab;
    await expectAccessible("sign-in");
    await screenshots(page, "sign-in");
    page = previous;
    await other.close();
  });

  it("shows a viewer no edit or operate controls", async () => {
    const sub = "viewer-e2e";
    const operator = await harness.token({ sub, role: "operator" });
    const own = await rest<ProxyView>(harness.url, operator, "POST", "/proxies", { name: "viewer-edge" });
    const viewer = await harness.token({ sub, role: "viewer" });
    const other = await harness.browser.newContext({ viewport: { width: 1280, height: 900 } });
    const tab = await other.newPage();
    await tab.goto(`${harness.url}/#token=${viewer}`);
    await tab.locator("table.fleet tbody tr", { hasText: "viewer-edge" }).waitFor();
    await tab.getByRole("link", { name: "viewer-edge" }).click();
    await tab.getByRole("heading", { name: "viewer-edge" }).waitFor();
    expect(await tab.getByRole("link", { name: "Policy", exact: true }).count()).toBe(0);
    expect(await tab.getByRole("link", { name: "Operate", exact: true }).count()).toBe(0);

    await tab.goto(`${harness.url}/proxies/${own.id}/operate`);
    await tab.getByText("Operating a proxy needs role operator or admin").waitFor();
    expect(await tab.getByRole("button", { name: "Scale…" }).count()).toBe(0);
    expect(await tab.getByRole("radio").count()).toBe(0);

    await tab.goto(`${harness.url}/proxies/${own.id}/policy`);
    await tab.getByText("Editing policies needs role admin").waitFor();
    expect(await tab.getByRole("button", { name: /Save policy/ }).count()).toBe(0);
    expect(await tab.getByRole("button", { name: "Evaluate now" }).count()).toBe(0);
    await other.close();
  });

  it("serves the UI under a Content-Security-Policy that none of its pages violates", async () => {
    const response = await page.goto(`${harness.url}/`);
    const headers = response!.headers();
    expect(headers["content-security-policy"]).toContain("script-src 'self'");
    expect(headers["x-content-type-options"]).toBe("nosniff");
    expect(headers["x-frame-options"]).toBe("DENY");
    for (const path of [
      "/",
      `/proxies/${demo.id}`,
      `/proxies/${demo.id}/policy`,
      `/proxies/${demo.id}/operate`,
      "/audit",
    ]) {
      await page.goto(`${harness.url}${path}`);
      await page.locator("main h1").first().waitFor();
      cspViolations.push(...(await cspViolationsOf(page)));
    }
    expect(cspViolations).toEqual([]);
  });
});
