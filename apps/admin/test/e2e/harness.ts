import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { signToken } from "@proxyscale/api";
import type { Role, Tier } from "@proxyscale/core";
import { loadConfig, type RunningServer, startServer } from "@proxyscale/server";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const adminDir = fileURLToPath(new URL("../..", import.meta.url));
export const distDir = join(adminDir, "dist");
export const screenshotDir = fileURLToPath(new URL("../../../../docs/screenshots", import.meta.url));

/** Launch flags from the design doc: headless, no background networking (the network here is closed). */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Whether the browser tests can run. In CI a missing browser is a failure (the suite must not pass by skipping);
 * locally it is a warning and the suite is skipped.
 */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI) {
    throw new Error(
      `Chromium is missing at ${CHROMIUM}: install it with apt-get install -y chromium (.ci/run does)`,
    );
  }
  console.warn(`[admin e2e] skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium)`);
  return false;
}

/** The production build the server serves (a child process: vitest's NODE_ENV=test would bundle React's dev build). */
export function buildAdmin() {
  execFileSync(join(adminDir, "node_modules", ".bin", "vite"), ["build", "--logLevel", "warn"], {
    cwd: adminDir,
    env: { ...process.env, NODE_ENV: "production" },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

export interface Harness {
  server: RunningServer;
  url: string;
  adminToken: string;
  secret: string;
  token(claims: { sub: string; role: Role; tier?: Tier }): Promise<string>;
  browser: Browser;
  close(): Promise<void>;
}

/**
 * The real server (fresh PGlite data dir, the demo on an ephemeral port) serving the built UI, and Chromium.
 * `databaseUrl` puts the server on that PostgreSQL database instead of PGlite.
 * `retention: false` turns the rollup scheduler off, so every sample stays raw (a range then has as many points
 * as it asks for, instead of one per rolled-up minute).
 */
export async function startHarness(
  options: { demo?: boolean; retention?: boolean; databaseUrl?: string } = {},
): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), "proxyscale-admin-e2e-"));
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    PROXYSCALE_DATA_DIR: dataDir,
    PROXYSCALE_DEMO: options.demo === false ? "0" : "1",
    PROXYSCALE_DEMO_PORT: "0",
    LOG_LEVEL: "warn",
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}),
    ...(options.retention === false ? { PROXYSCALE_RETENTION_INTERVAL_SECONDS: "0" } : {}),
  });
  const server = await startServer(config, { overrides: { adminDistDir: distDir } });
  const adminToken = server.firstAdminToken;
  if (!adminToken || !server.secretFile)
    throw new Error("a fresh data dir should mint the first admin token");
  const secret = readFileSync(server.secretFile.path, "utf8").trim();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  return {
    server,
    url: server.url,
    adminToken,
    secret,
    token: ({ sub, role, tier = "pro" }) => signToken({ sub, role, tier, secret, expiresIn: "1h" }),
    browser,
    async close() {
      await browser.close().catch(() => {});
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; failureSummary?: string }[];
}

/** axe-core's WCAG 2 A/AA rules on the page as it is; only serious and critical violations are returned. */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  // Evaluated over the DevTools protocol: a script tag would be refused by the UI's Content-Security-Policy.
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (
      window as unknown as {
        axe: { run: (ctx: unknown, options: unknown) => Promise<{ violations: unknown[] }> };
      }
    ).axe;
    const result = await axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21aa"] },
    });
    return result.violations as AxeViolation[];
  });
  return violations
    .filter((violation) => violation.impact === "serious" || violation.impact === "critical")
    .map((violation) => ({
      ...violation,
      nodes: violation.nodes
        .slice(0, 3)
        .map((node) => ({ target: node.target, failureSummary: node.failureSummary })),
    }));
}

/** Both required widths: desktop (1280) and phone (390). */
export async function screenshots(page: Page, name: string) {
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: width === 1280 ? 900 : 844 });
    await page.screenshot({ path: join(screenshotDir, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

/** REST with a bearer token, for the steps that act outside the browser. */
export async function rest<T>(
  url: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const response = await fetch(`${url}/api${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

/**
 * Records every Content-Security-Policy violation on the context's pages (read with `cspViolationsOf`). A
 * string, not a function: vitest's transform may wrap a function's body in helpers the page does not have.
 */
export async function recordCspViolations(context: BrowserContext): Promise<void> {
  await context.addInitScript(`
    window.cspViolations = [];
    document.addEventListener("securitypolicyviolation", (event) =>
      window.cspViolations.push(event.violatedDirective + " " + event.blockedURI));
  `);
}

/** The violations `recordCspViolations` saw on the page's current document. */
export function cspViolationsOf(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations);
}
