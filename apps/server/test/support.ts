import { randomBytes } from "node:crypto";
import { signToken } from "@proxyscale/api";
import type { Role, Tier } from "@proxyscale/core";
import type { Database } from "@proxyscale/db";
import { disposeDatabase, probePostgres, testDrivers } from "@proxyscale/db/testing";
import { afterAll, beforeAll, describe } from "vitest";
import { createLogger } from "../src/logger.ts";
import { createServer, type ProxyScaleServer, type ServerDeps } from "../src/server.ts";

export { disposeDatabase, POSTGRES_URL } from "@proxyscale/db/testing";

export const postgresAvailable = await probePostgres("@proxyscale/server");
const drivers = testDrivers(postgresAvailable, "api");

export const TEST_SECRET = `test-secret-${randomBytes(24).toString("hex")}`;

export interface TokenOptions {
  sub?: string;
  role?: Role;
  tier?: Tier;
  expiresIn?: number | string;
  secret?: string;
}

let counter = 0;
/** A name no other test uses (owners, proxies). */
export function unique(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}-${randomBytes(3).toString("hex")}`;
}

export function token(options: TokenOptions = {}): Promise<string> {
  return signToken({
    sub: options.sub ?? unique("user"),
    role: options.role ?? "operator",
    tier: options.tier ?? "enterprise",
    secret: options.secret ?? TEST_SECRET,
    expiresIn: options.expiresIn ?? "1h",
  });
}

export interface TestServer {
  url: string;
  server: ProxyScaleServer;
  close(): Promise<void>;
}

/** A server on an ephemeral port over `database` (which it does not close). */
export async function startTestServer(
  database: Database,
  overrides: Partial<Omit<ServerDeps, "database">> = {},
): Promise<TestServer> {
  const server = createServer({
    database,
    auth: { jwtSecret: TEST_SECRET },
    logger: createLogger("silent"),
    adminDistDir: null,
    ...overrides,
  });
  const { url } = await server.listen(0, "127.0.0.1");
  return { url, server, close: () => server.close() };
}

export interface Client {
  request(
    method: string,
    path: string,
    options?: { body?: unknown; rawBody?: string; token?: string | null; headers?: Record<string, string> },
    // biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted field by field in tests
  ): Promise<{ status: number; body: any; headers: Headers }>;
}

/** JSON over real HTTP. `token` is the caller's bearer token unless a request passes its own (null: none). */
export function client(baseUrl: string, defaultToken?: string): Client {
  return {
    async request(method, path, options = {}) {
      const bearer = options.token === undefined ? defaultToken : options.token;
      const headers: Record<string, string> = { ...options.headers };
      if (bearer) headers.authorization = `Bearer ${bearer}`;
      let body: string | undefined;
      if (options.rawBody !== undefined) body = options.rawBody;
      else if (options.body !== undefined) body = JSON.stringify(options.body);
      if (body !== undefined && !headers["content-type"]) headers["content-type"] = "application/json";
      const response = await fetch(`${baseUrl}${path}`, { method, headers, body });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        // Non-JSON responses (the docs page, /metrics) stay text.
      }
      return { status: response.status, body: parsed, headers: response.headers };
    },
  };
}

/** Both drivers (PGlite always, PostgreSQL when it answers), for suites that wire their own server. */
export const testDriverList = () => drivers;

/** Runs `body` once per available driver with one database and one server shared by the file. */
export function forEachDriver(
  title: string,
  body: (context: () => { database: Database; url: string }) => void,
) {
  for (const driver of drivers) {
    describe.skipIf(!driver.available)(`${title} [${driver.name}]`, () => {
      let database: Database | undefined;
      let server: TestServer | undefined;
      beforeAll(async () => {
        database = await driver.open({ poolMax: 8 });
        server = await startTestServer(database);
      });
      afterAll(async () => {
        await server?.close();
        if (database) await disposeDatabase(database);
      });
      body(() => {
        if (!database || !server) throw new Error("suite not started");
        return { database, url: server.url };
      });
    });
  }
}

export const HIGH_LOAD = {
  cpuPercent: 95,
  memoryPercent: 90,
  requestRate: 1500,
  avgLatencyMs: 40,
  errorRatePercent: 2,
};
export const MID_LOAD = {
  cpuPercent: 50,
  memoryPercent: 60,
  requestRate: 500,
  avgLatencyMs: 20,
  errorRatePercent: 2,
};
export const LOW_LOAD = {
  cpuPercent: 5,
  memoryPercent: 10,
  requestRate: 20,
  avgLatencyMs: 5,
  errorRatePercent: 0,
};

/** Registers a proxy for the token's owner and returns its id. */
export async function registerProxy(api: Client, fields: Record<string, unknown> = {}): Promise<string> {
  const response = await api.request("POST", "/api/proxies", { body: { name: unique("proxy"), ...fields } });
  if (response.status !== 201)
    throw new Error(`register failed: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body.id as string;
}
