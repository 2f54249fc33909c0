import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  disposeDatabase,
  startTestServer,
  type TestServer,
  testDriverList,
  token,
  unique,
} from "./support.ts";

const pglite = testDriverList().find((driver) => driver.name === "pglite")!;

/** A GET with a forged Host header (fetch does not let a caller set Host). */
function getWithHost(url: string, path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(`${url}${path}`, { headers: { host } }, (response) => {
      let body = "";
      response.on("data", (chunk) => {
        body += chunk;
      });
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on("error", reject);
  });
}

describe("response headers and what the server exposes", () => {
  let database: Awaited<ReturnType<typeof pglite.open>>;
  let server: TestServer;
  let configured: TestServer;
  let adminDir: string;
  beforeAll(async () => {
    adminDir = mkdtempSync(join(tmpdir(), "proxyscale-admin-"));
    mkdirSync(join(adminDir, "assets"));
    writeFileSync(
      join(adminDir, "index.html"),
      '<!doctype html><script type="module" src="/assets/app.js"></script>',
    );
    writeFileSync(join(adminDir, "assets", "app.js"), "console.log(1)");
    database = await pglite.open();
    server = await startTestServer(database, { adminDistDir: adminDir });
    configured = await startTestServer(database, { publicUrl: "https://proxyscale.example.com/" });
  });
  afterAll(async () => {
    await server?.close();
    await configured?.close();
    if (database) await disposeDatabase(database);
    rmSync(adminDir, { recursive: true, force: true });
  });

  it("sends nosniff and frame protection on every response: API, errors, health, tRPC, the UI", async () => {
    const bearer = await token({ sub: unique("headers") });
    for (const path of [
      "/api/proxies",
      "/api/nope",
      "/healthz",
      "/trpc/proxies.list",
      "/",
      "/assets/app.js",
      "/x",
    ]) {
      const response = await fetch(`${server.url}${path}`, {
        headers: { authorization: `Bearer ${bearer}` },
      });
      expect(response.headers.get("x-content-type-options"), path).toBe("nosniff");
      expect(response.headers.get("x-frame-options"), path).toBe("DENY");
      expect(response.headers.get("content-security-policy"), path).toContain("frame-ancestors 'none'");
    }
  });

  it("serves the admin UI under a policy that allows its own scripts only, and the API reference with none", async () => {
    const ui = (await fetch(`${server.url}/`)).headers.get("content-security-policy") ?? "";
    expect(ui).toContain("script-src 'self'");
    expect(ui).toContain("connect-src 'self'");
    expect(ui).not.toMatch(/script-src[^;]*unsafe/);
    const docs = (await fetch(`${server.url}/api/docs`)).headers.get("content-security-policy") ?? "";
    expect(docs).toContain("default-src 'none'");
    expect(docs).not.toContain("script-src");
    expect(docs).toContain("frame-ancestors 'none'");
  });

  it("prints the listen address in openapi.json and the reference, whatever Host the request names", async () => {
    const document = await getWithHost(server.url, "/api/openapi.json", "evil.example");
    expect(JSON.parse(document.body).servers[0].url).toBe(`${server.url}/api`);
    const page = await getWithHost(server.url, "/api/docs", "evil.example");
    expect(page.body).not.toContain("evil.example");
  });

  it("prints PROXYSCALE_PUBLIC_URL when it is configured", async () => {
    const document = await getWithHost(configured.url, "/api/openapi.json", "evil.example");
    expect(JSON.parse(document.body).servers[0].url).toBe("https://proxyscale.example.com/api");
  });

  describe("/metrics", () => {
    const METRICS_TOKEN = `scrape-${unique("token")}-0123456789`;
    let guarded: TestServer;
    let open: TestServer;
    beforeAll(async () => {
      guarded = await startTestServer(database, { metricsAccess: { token: METRICS_TOKEN } });
      open = await startTestServer(database, { metricsAccess: { public: true } });
    });
    afterAll(async () => {
      await guarded?.close();
      await open?.close();
    });
    const scrape = (url: string, bearer?: string) =>
      fetch(`${url}/metrics`, bearer ? { headers: { authorization: `Bearer ${bearer}` } } : {});

    it("answers 401 to a scrape without a token or with a wrong one, and 403 to a token that is not an admin's", async () => {
      for (const target of [server, guarded]) {
        const anonymous = await scrape(target.url);
        expect(anonymous.status).toBe(401);
        expect(anonymous.headers.get("www-authenticate")).toMatch(/^Bearer/);
        const text = await anonymous.text();
        expect(text).toContain("PROXYSCALE_METRICS_TOKEN");
        expect(text).not.toContain("proxyscale_http_requests_total");
        expect((await scrape(target.url, `${METRICS_TOKEN}x`)).status).toBe(401);
        const operator = await scrape(target.url, await token({ role: "operator" }));
        expect(operator.status).toBe(403);
        expect(await operator.text()).toContain("requires role admin");
      }
    });

    it("serves an admin token, the configured metrics token, and anyone when PROXYSCALE_METRICS_PUBLIC=1", async () => {
      const admin = await scrape(server.url, await token({ role: "admin" }));
      expect(admin.status).toBe(200);
      expect(await admin.text()).toContain("proxyscale_http_requests_total");
      expect((await scrape(guarded.url, METRICS_TOKEN)).status).toBe(200);
      // Without a configured metrics token, that string is just an invalid JWT.
      expect((await scrape(server.url, METRICS_TOKEN)).status).toBe(401);
      expect((await scrape(open.url)).status).toBe(200);
    });
  });
});
