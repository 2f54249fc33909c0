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
});
