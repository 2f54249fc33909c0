import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_DATA_DIR } from "@proxyscale/core";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.ts";

const serverDir = fileURLToPath(new URL("..", import.meta.url));
const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));

/** Environment for the child: none of this shell's ProxyScale or database settings leak in. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  return { ...env, ...extra };
}

const children: ChildProcess[] = [];
const directories: string[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

function run(env: NodeJS.ProcessEnv) {
  // tsx's loader, as `npm start` runs it, not the tsx CLI: the CLI forks, and when it alone is sent SIGTERM it
  // SIGKILLs the server if the server has not confirmed the signal within 30 ms (a loaded machine: exit 143).
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: serverDir,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exited, output: () => ({ stdout, stderr }) };
}

describe("configuration", () => {
  it("applies defaults when nothing is set", () => {
    expect(loadConfig({})).toMatchObject({
      port: 8080,
      host: "127.0.0.1",
      databaseUrl: undefined,
      dataDir: DEFAULT_DATA_DIR,
      logLevel: "info",
      maxBodyBytes: 4 * 1024 * 1024,
      queryTimeoutMs: 5_000,
      shutdownTimeoutMs: 10_000,
    });
  });

  it("takes the query and shutdown deadlines in seconds, and refuses ones that are not positive", () => {
    expect(
      loadConfig({ PROXYSCALE_QUERY_TIMEOUT_SECONDS: "1.5", PROXYSCALE_SHUTDOWN_TIMEOUT_SECONDS: "" }),
    ).toMatchObject({ queryTimeoutMs: 1_500, shutdownTimeoutMs: 10_000 });
    expect(() =>
      loadConfig({ PROXYSCALE_QUERY_TIMEOUT_SECONDS: "0", PROXYSCALE_SHUTDOWN_TIMEOUT_SECONDS: "soon" }),
    ).toThrow(
      "PROXYSCALE_QUERY_TIMEOUT_SECONDS: must be greater than 0\n  PROXYSCALE_SHUTDOWN_TIMEOUT_SECONDS: must be a number of seconds",
    );
    expect(() => loadConfig({ PROXYSCALE_QUERY_TIMEOUT_SECONDS: "601" })).toThrow(
      "PROXYSCALE_QUERY_TIMEOUT_SECONDS: must be at most 600",
    );
  });

  it("names every bad variable and its rule, never its value", () => {
    const secret = "short-secret";
    let error: unknown;
    try {
      loadConfig({
        PORT: "eighty",
        DATABASE_URL: "mysql://db/x",
        PROXYSCALE_JWT_SECRET: secret,
        PROXYSCALE_JWKS_URL: "not a url",
        LOG_LEVEL: "loud",
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const variable of [
      "PORT",
      "DATABASE_URL",
      "PROXYSCALE_JWT_SECRET",
      "PROXYSCALE_JWKS_URL",
      "LOG_LEVEL",
    ]) {
      expect(message).toContain(`${variable}:`);
    }
    expect(message).toContain("at least 32 characters");
    expect(message).not.toContain(secret);
  });

  it("refuses rollups kept for less time than the raw samples they summarise", () => {
    expect(() =>
      loadConfig({ PROXYSCALE_METRICS_RETENTION_DAYS: "30", PROXYSCALE_ROLLUP_RETENTION_DAYS: "14" }),
    ).toThrow("PROXYSCALE_ROLLUP_RETENTION_DAYS: must be at least PROXYSCALE_METRICS_RETENTION_DAYS (30)");
    expect(() => loadConfig({ PROXYSCALE_METRICS_RETENTION_DAYS: "120" })).toThrow(
      "PROXYSCALE_ROLLUP_RETENTION_DAYS: must be at least PROXYSCALE_METRICS_RETENTION_DAYS (120)",
    );
    expect(
      loadConfig({ PROXYSCALE_METRICS_RETENTION_DAYS: "30", PROXYSCALE_ROLLUP_RETENTION_DAYS: "30" }).control
        .retention,
    ).toMatchObject({ rawRetentionDays: 30, rollupRetentionDays: 30 });
  });

  it("requires a JWT secret or JWKS URL when the data directory is in memory", () => {
    expect(() => loadConfig({ PROXYSCALE_DATA_DIR: "memory://" })).toThrow(
      "PROXYSCALE_JWT_SECRET: is required when PROXYSCALE_DATA_DIR is memory://",
    );
    const secret = "s".repeat(32);
    expect(loadConfig({ PROXYSCALE_DATA_DIR: "memory://", PROXYSCALE_JWT_SECRET: secret }).jwtSecret).toBe(
      secret,
    );
    expect(
      loadConfig({ PROXYSCALE_DATA_DIR: "memory://", PROXYSCALE_JWKS_URL: "http://127.0.0.1:1/jwks" })
        .jwksUrl,
    ).toBe("http://127.0.0.1:1/jwks");
  });

  it("exits 1 with a clear message on a bad value", async () => {
    const { exited, output } = run(cleanEnv({ PORT: "99999" }));
    expect(await exited).toBe(1);
    expect(output().stderr).toContain("PORT: must be a port: 0 to 65535");
  });
});

describe("embedded start (main.ts under tsx's loader, as npm start runs it)", () => {
  it("runs on PGlite with zero config, creates a 0600 secret, prints URL, admin token, sign-in link and CLI command, stops on SIGTERM", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "proxyscale-main-"));
    directories.push(dataDir);
    const { child, exited, output } = run(
      cleanEnv({ PORT: "0", PROXYSCALE_DATA_DIR: dataDir, LOG_LEVEL: "warn" }),
    );
    // The first start creates the database and the secret: seconds, more on a loaded machine.
    await expect
      .poll(() => output().stdout, { timeout: 60_000, interval: 100 })
      .toContain("proxyscale -- token");

    const { stdout } = output();
    const url = /ProxyScale is running at (http:\/\/\S+)/.exec(stdout)?.[1];
    const adminToken = /Admin token \(valid 30 days\):\n\s+(\S+)/.exec(stdout)?.[1];
    expect(url).toBeDefined();
    expect(adminToken).toBeDefined();
    // The sign-in link: the server's URL with the token in the fragment, and that token is accepted.
    const link = /^\s+(http:\/\/\S+\/#token=\S+)$/m.exec(stdout)?.[1];
    expect(link).toBe(`${url}/#token=${adminToken}`);
    const linkToken = new URL(link!).hash.slice("#token=".length);
    const viaLink = await fetch(`${url}/api/proxies`, { headers: { authorization: `Bearer ${linkToken}` } });
    expect(viaLink.status).toBe(200);
    expect(statSync(join(dataDir, "jwt-secret")).mode & 0o777).toBe(0o600);

    // The printed CLI command, run as printed from the repository root, mints a token the server accepts.
    const mint = /^\s+(npm run -s proxyscale -- token .+)$/m.exec(stdout)?.[1];
    expect(mint).toBeDefined();
    const minted = await new Promise<string>((resolve, reject) =>
      execFile("sh", ["-c", mint!], { cwd: repoRoot, env: cleanEnv({}) }, (error, out, err) =>
        error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out.trim()),
      ),
    );
    const asOperator = await fetch(`${url}/api/proxies`, { headers: { authorization: `Bearer ${minted}` } });
    expect(asOperator.status).toBe(200);

    const created = await fetch(`${url}/api/proxies`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "first" }),
    });
    expect(created.status).toBe(201);

    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(output().stderr).toContain("SIGTERM");
  });
});
