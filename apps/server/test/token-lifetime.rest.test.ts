import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import {
  client,
  disposeDatabase,
  startTestServer,
  TEST_SECRET,
  type TestServer,
  testDriverList,
  token,
  unique,
} from "./support.ts";

const pglite = testDriverList().find((driver) => driver.name === "pglite")!;

/** An HS256 token with exactly these time claims (iat omitted when undefined). */
function tokenWith(times: { iat?: number; exp: number }, role = "operator"): Promise<string> {
  const jwt = new SignJWT({ role, tier: "pro" })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(unique("lifetime"))
    .setExpirationTime(times.exp);
  if (times.iat !== undefined) jwt.setIssuedAt(times.iat);
  return jwt.sign(new TextEncoder().encode(TEST_SECRET));
}

describe("PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS refuses tokens that live longer", () => {
  let database: Awaited<ReturnType<typeof pglite.open>>;
  let server: TestServer;
  beforeAll(async () => {
    database = await pglite.open();
    server = await startTestServer(database, {
      auth: { jwtSecret: TEST_SECRET, maxTokenLifetimeSeconds: 3_600 },
    });
  });
  afterAll(async () => {
    await server?.close();
    if (database) await disposeDatabase(database);
  });
  const list = (bearer: string) => client(server.url, bearer).request("GET", "/api/proxies");

  it("accepts a token of the limit or less", async () => {
    expect((await list(await token({ expiresIn: 3_600 }))).status).toBe(200);
    expect((await list(await token({ expiresIn: "15m" }))).status).toBe(200);
  });

  it("answers 401 naming the lifetime and the limit to a longer one, over REST, tRPC and /metrics", async () => {
    const long = await token({ expiresIn: "2h", role: "admin" });
    const rest = await list(long);
    expect(rest.status).toBe(401);
    expect(rest.body.message).toContain(
      "token lifetime of 7200 s (exp − iat) exceeds the server's limit of 3600 s (PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS)",
    );
    const trpc = await client(server.url, long).request("GET", "/trpc/proxies.list");
    expect(trpc.status).toBe(401);
    const metrics = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${long}` } });
    expect(metrics.status).toBe(401);
    expect(await metrics.text()).toContain("exceeds the server's limit");
  });

  it("refuses a token without iat, and one whose iat is set in the future to pass", async () => {
    const now = Math.floor(Date.now() / 1000);
    const noIat = await list(await tokenWith({ exp: now + 600 }));
    expect(noIat.status).toBe(401);
    expect(noIat.body.message).toContain("token has no iat claim");
    const futureIat = await list(await tokenWith({ iat: now + 86_400, exp: now + 86_400 + 3_000 }));
    expect(futureIat.status).toBe(401);
    expect(futureIat.body.message).toContain("exceeds the server's limit");
  });

  it("reads the limit from the environment (unset: any lifetime)", () => {
    expect(loadConfig({}).maxTokenLifetimeSeconds).toBeUndefined();
    expect(loadConfig({ PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS: "86400" }).maxTokenLifetimeSeconds).toBe(
      86_400,
    );
    expect(() => loadConfig({ PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS: "10" })).toThrow(
      /PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS: must be at least 60/,
    );
  });
});
