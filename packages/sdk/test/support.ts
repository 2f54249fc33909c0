import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { signToken } from "@proxyscale/api/auth";
import type { Role, Tier } from "@proxyscale/core";
import { openDatabase } from "@proxyscale/db";
import { disposeDatabase, POSTGRES_URL, probePostgres, randomSchemaName } from "@proxyscale/db/testing";
// A relative import, not a devDependency: @proxyscale/server depends on this package (its workers use the
// reporter), and a dependency back would be a workspace cycle that turbo refuses to run.
import { createLogger, createServer, loadConfig, startServer } from "../../../apps/server/src/index.ts";

export const SECRET = `sdk-test-secret-${randomBytes(24).toString("hex")}`;

export interface TestServer {
  url: string;
  close(): Promise<void>;
}

/**
 * The server as `pnpm start` runs it, from env-style config, on in-memory PGlite with a given secret. Without the
 * demo proxy (PROXYSCALE_DEMO=0): tests register their own proxies.
 */
export async function startPgliteServer(): Promise<TestServer> {
  const running = await startServer(
    loadConfig({
      PORT: "0",
      HOST: "127.0.0.1",
      PROXYSCALE_DATA_DIR: "memory://",
      PROXYSCALE_JWT_SECRET: SECRET,
      PROXYSCALE_DEMO: "0",
      LOG_LEVEL: "silent",
    }),
  );
  return {
    url: running.url,
    close: async () => {
      await running.close();
    },
  };
}

/** A server on PostgreSQL in a schema of its own (dropped on close), or null when PostgreSQL is unreachable. */
export async function startPostgresServer(): Promise<TestServer | null> {
  if (!(await probePostgres("@proxyscale/sdk"))) return null;
  const database = await openDatabase({ url: POSTGRES_URL, pgSchema: randomSchemaName("sdk"), poolMax: 4 });
  const server = createServer({
    database,
    auth: { jwtSecret: SECRET },
    logger: createLogger("silent"),
    adminDistDir: null,
  });
  const { url } = await server.listen(0, "127.0.0.1");
  return {
    url,
    async close() {
      await server.close();
      await disposeDatabase(database);
    },
  };
}

export interface EmbeddedServer extends TestServer {
  dataDir: string;
  firstAdminToken: string;
}

/**
 * The zero-config embedded start: PGlite in a fresh data directory, where the server creates its JWT secret and
 * mints the first admin token. The directory is removed on close.
 */
export async function startEmbeddedServer(): Promise<EmbeddedServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "proxyscale-sdk-"));
  const running = await startServer(
    loadConfig({
      PORT: "0",
      HOST: "127.0.0.1",
      PROXYSCALE_DATA_DIR: dataDir,
      PROXYSCALE_DEMO: "0",
      LOG_LEVEL: "silent",
    }),
  );
  if (!running.firstAdminToken) throw new Error("the embedded server minted no first admin token");
  return {
    url: running.url,
    dataDir,
    firstAdminToken: running.firstAdminToken,
    async close() {
      await running.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

let counter = 0;
/** A name no other test uses. */
export function unique(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}-${randomBytes(3).toString("hex")}`;
}

/** A token for SECRET; `issuedAt` in the past mints one that has already expired. */
export function token(
  options: { sub?: string; role?: Role; tier?: Tier; secret?: string; issuedAt?: number } = {},
) {
  return signToken({
    sub: options.sub ?? unique("user"),
    role: options.role ?? "operator",
    tier: options.tier ?? "enterprise",
    secret: options.secret ?? SECRET,
    expiresIn: "1h",
    now: options.issuedAt ?? Date.now(),
  });
}

export const HIGH_LOAD = {
  cpuPercent: 95,
  memoryPercent: 90,
  requestRate: 1500,
  avgLatencyMs: 40,
  errorRatePercent: 2,
};

const CLI_BIN = fileURLToPath(new URL("../bin/proxyscale.mjs", import.meta.url));

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the `proxyscale` bin as a child process from `cwd`, with `serverUrl` as PROXYSCALE_URL. The environment
 * carries no PROXYSCALE_* but what the test gives.
 */
export function runCli(
  options: { cwd: string; serverUrl: string; timeoutMs: number },
  args: string[],
  env: Record<string, string> = {},
): Promise<CliRun> {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("PROXYSCALE_")),
  );
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI_BIN, ...args],
      {
        cwd: options.cwd,
        env: { ...inherited, PROXYSCALE_URL: options.serverUrl, ...env },
        timeout: options.timeoutMs,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
