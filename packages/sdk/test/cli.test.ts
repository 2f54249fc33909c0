import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signToken, verifyToken } from "@proxyscale/api/auth";
import { JWT_SECRET_FILE_NAME } from "@proxyscale/core";
import { haproxyExposition } from "@proxyscale/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProxyScaleClient, type ProxyScaleClient } from "../src/client.ts";
import { type CliRun, type EmbeddedServer, runCli, startEmbeddedServer, unique } from "./support.ts";

const TIMEOUT = 90_000;

let server: EmbeddedServer;
let secret: string;
let adminToken: string;
let admin: ProxyScaleClient;
/** The CLI runs from an unrelated directory: the bin must find its own dependencies and resolve files from cwd. */
let workDir: string;

/** Runs the bin as a child process. The environment carries no PROXYSCALE_* but what the test gives. */
function cli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli({ cwd: workDir, serverUrl: server.url, timeoutMs: 30_000 }, args, env);
}

/** `cli` as the admin. */
function asAdmin(args: string[]): Promise<CliRun> {
  return cli(args, { PROXYSCALE_TOKEN: adminToken });
}

function json<T = Record<string, unknown>>(run: CliRun): T {
  expect(run.stderr).toBe("");
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as T;
}

function file(name: string, content: string): string {
  writeFileSync(join(workDir, name), content);
  return name;
}

async function registerProxy(): Promise<string> {
  return (await admin.proxies.register.mutate({ name: unique("edge") })).id;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

beforeAll(async () => {
  server = await startEmbeddedServer();
  secret = readFileSync(join(server.dataDir, JWT_SECRET_FILE_NAME), "utf8").trim();
  adminToken = server.firstAdminToken;
  admin = createProxyScaleClient({ url: server.url, token: adminToken });
  workDir = mkdtempSync(join(tmpdir(), "proxyscale-cli-"));
}, TIMEOUT);

afterAll(async () => {
  await server?.close();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
}, TIMEOUT);

describe("proxyscale token", () => {
  it(
    "mints a token from the embedded server's data-dir secret that verifies and that the server accepts",
    async () => {
      const minted = await cli([
        "token",
        "--data-dir",
        server.dataDir,
        "--sub",
        "alice",
        "--role",
        "operator",
        "--tier",
        "pro",
        "--expires",
        "2h",
      ]);
      expect(minted.stderr).toBe("");
      expect(minted.code).toBe(0);
      const token = minted.stdout.trim();
      expect(token.split(".")).toHaveLength(3);
      const claims = await verifyToken(token, { jwtSecret: secret });
      expect(claims).toMatchObject({ sub: "alice", role: "operator", tier: "pro" });
      expect(claims.expiresAt! - Date.now()).toBeGreaterThan(2 * 3_600_000 - 60_000);
      expect(claims.expiresAt! - Date.now()).toBeLessThanOrEqual(2 * 3_600_000);

      const created = json<{ id: string; ownerId: string }>(
        await cli(["proxies", "create", "--name", unique("edge"), "--json"], { PROXYSCALE_TOKEN: token }),
      );
      expect(created.ownerId).toBe("alice");

      const fromEnv = json<{ token: string; sub: string; role: string; expiresAt: string }>(
        await cli(["token", "--sub", "bob", "--json"], { PROXYSCALE_JWT_SECRET: "e".repeat(40) }),
      );
      expect(fromEnv).toMatchObject({ sub: "bob", role: "viewer", tier: "free" });
      await expect(verifyToken(fromEnv.token, { jwtSecret: "e".repeat(40) })).resolves.toMatchObject({
        sub: "bob",
      });
      await expect(verifyToken(fromEnv.token, { jwtSecret: secret })).rejects.toThrow("signature");
    },
    TIMEOUT,
  );

  it(
    "keeps within PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS: refuses a longer --expires, shortens the default",
    async () => {
      const secret = "m".repeat(40);
      const limit = { PROXYSCALE_JWT_SECRET: secret, PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS: "3600" };
      const [tooLong, defaulted, within] = await Promise.all([
        cli(["token", "--sub", "a", "--expires", "2h"], limit),
        cli(["token", "--sub", "a", "--json"], limit),
        cli(["token", "--sub", "a", "--expires", "15m", "--json"], limit),
      ]);
      expect(tooLong.code).toBe(2);
      expect(tooLong.stdout).toBe("");
      expect(tooLong.stderr).toContain(
        "--expires 2h (7200 s) is longer than PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS (3600 s)",
      );
      const server = { jwtSecret: secret, maxTokenLifetimeSeconds: 3600 };
      const capped = json<{ token: string }>(defaulted).token;
      await expect(verifyToken(capped, server)).resolves.toMatchObject({ sub: "a" });
      const claims = JSON.parse(Buffer.from(capped.split(".")[1]!, "base64url").toString()) as {
        iat: number;
        exp: number;
      };
      expect(claims.exp - claims.iat).toBe(3600);
      await expect(verifyToken(json<{ token: string }>(within).token, server)).resolves.toMatchObject({
        sub: "a",
      });
    },
    TIMEOUT,
  );

  it(
    "refuses to mint without a secret or with a bad role, naming the fix",
    async () => {
      const [noSecret, badRole, noSub] = await Promise.all([
        cli(["token", "--sub", "a", "--data-dir", join(workDir, "nowhere")]),
        cli(["token", "--sub", "a", "--role", "root", "--secret", "s".repeat(40)]),
        cli(["token", "--secret", "s".repeat(40)]),
      ]);
      expect(noSecret.code).toBe(1);
      expect(noSecret.stderr).toContain("no JWT secret: pass --secret, set PROXYSCALE_JWT_SECRET");
      expect(noSecret.stdout).toBe("");
      expect(badRole.code).toBe(1);
      expect(badRole.stderr).toMatch(/role: .*"viewer"\|"operator"\|"admin"/);
      expect(noSub.code).toBe(2);
      expect(noSub.stderr).toContain("missing --sub <user>");
    },
    TIMEOUT,
  );
});

describe("proxyscale proxies", () => {
  it(
    "creates, lists (table and JSON) and removes a proxy",
    async () => {
      const name = unique("edge");
      const created = json<{ id: string; name: string; region: string }>(
        await asAdmin(["proxies", "create", "--name", name, "--region", "eu-west-1", "--json"]),
      );
      expect(created).toMatchObject({ name, region: "eu-west-1" });

      const table = await asAdmin(["proxies", "ls"]);
      expect(table.code).toBe(0);
      const header = table.stdout.split("\n")[0]!;
      expect(header).toMatch(/^ID\s+NAME\s+ENVIRONMENT\s+REGION\s+REPLICAS\s+HEALTH\s+ACTUATOR$/);
      const row = table.stdout.split("\n").find((line) => line.startsWith(created.id));
      expect(row).toMatch(
        new RegExp(`^${created.id}\\s+${name}\\s+production\\s+eu-west-1\\s+1/1\\s+healthy\\s+none$`),
      );

      const removed = await asAdmin(["proxies", "rm", created.id]);
      expect(removed).toMatchObject({ code: 0, stdout: `deleted proxy ${created.id}\n` });
      const after = json<{ items: Array<{ id: string }> }>(await asAdmin(["proxies", "ls", "--json"]));
      expect(after.items.map((item) => item.id)).not.toContain(created.id);
    },
    TIMEOUT,
  );
});

describe("proxyscale proxies create --actuator-file", () => {
  it(
    "registers a proxy with an actuator from YAML, and refuses an invalid one before sending",
    async () => {
      const webhookSecret = "a-webhook-secret-of-some-length";
      file(
        "actuator.yaml",
        ["kind: webhook", "url: http://127.0.0.1:9/scale", `secret: ${webhookSecret}`, "maxAttempts: 2"].join(
          "\n",
        ),
      );
      const created = json<{ actuator: Record<string, unknown> }>(
        await asAdmin([
          "proxies",
          "create",
          "--name",
          unique("hooked"),
          "--actuator-file",
          "actuator.yaml",
          "--json",
        ]),
      );
      expect(created.actuator).toMatchObject({
        kind: "webhook",
        url: "http://127.0.0.1:9/scale",
        maxAttempts: 2,
      });
      expect(JSON.stringify(created)).not.toContain(webhookSecret);

      const before = await admin.proxies.list.query({});
      file("bad-actuator.json", JSON.stringify({ kind: "webhook", url: "ftp://nowhere", secret: "short" }));
      const rejected = await asAdmin([
        "proxies",
        "create",
        "--name",
        unique("x"),
        "--actuator-file",
        "bad-actuator.json",
      ]);
      expect(rejected.code).toBe(1);
      expect(rejected.stderr).toContain("actuator file bad-actuator.json is invalid; nothing was sent");
      expect(rejected.stderr).toContain("url: must be an http:// or https:// URL");
      expect(rejected.stderr).toContain("secret: must be at least 16 characters");
      const ids = (page: typeof before) => page.items.map((item) => item.id);
      expect(ids(await admin.proxies.list.query({}))).toEqual(ids(before));
    },
    TIMEOUT,
  );
});

describe("proxyscale proxies get", () => {
  it(
    "shows a scraped proxy's source and each target's last scrape, and a pushed one's source alone",
    async () => {
      // A replica's exporter in HAProxy's shape, and a target that refuses connections.
      let served = 0;
      const exporter = createHttpServer((_req, res) => {
        served += 5;
        res.end(haproxyExposition(served));
      });
      await new Promise<void>((resolve) => exporter.listen(0, "127.0.0.1", resolve));
      const exporterUrl = `http://127.0.0.1:${(exporter.address() as { port: number }).port}/metrics`;
      const goneUrl = `http://127.0.0.1:${await closedPort()}/metrics`;
      try {
        const scraped = await admin.proxies.register.mutate({
          name: unique("scraped"),
          metricsSource: {
            kind: "scrape",
            intervalSeconds: 1,
            timeoutMs: 500,
            mapping: "haproxy",
            targets: {
              static: [
                { instance: "edge-1", url: exporterUrl },
                { instance: "edge-2", url: goneUrl },
              ],
            },
          },
        });
        await expect
          .poll(
            async () => {
              const shown = await asAdmin(["proxies", "get", scraped.id]);
              return shown.code === 0 && /edge-1 .*yes +yes/.test(shown.stdout) ? shown.stdout : "";
            },
            { timeout: 30_000, interval: 500 },
          )
          .toMatch(/kind: scrape[\s\S]*last scrape: +\d{4}-[\s\S]*edge-2 .*no +no/);
        const detail = json<{ metricsSource: { kind: string }; sourceHealth: { targets: unknown[] } }>(
          await asAdmin(["proxies", "get", scraped.id, "--json"]),
        );
        expect(detail.metricsSource.kind).toBe("scrape");
        expect(detail.sourceHealth.targets).toHaveLength(2);

        const pushed = await registerProxy();
        const plain = await asAdmin(["proxies", "get", pushed]);
        expect(plain.code).toBe(0);
        expect(plain.stdout).toContain("kind: push");
        expect(plain.stdout).not.toContain("source health");
      } finally {
        await new Promise((resolve) => exporter.close(resolve));
      }
    },
    TIMEOUT,
  );
});

describe("proxyscale policy", () => {
  it(
    "sets a policy from JSON and from YAML and reads it back with its source",
    async () => {
      const proxyId = await registerProxy();
      file("policy.json", JSON.stringify({ minReplicas: 2, maxReplicas: 7, mode: "off" }));
      const fromJson = await asAdmin(["policy", "set", proxyId, "--file", "policy.json"]);
      expect(fromJson.code).toBe(0);
      expect(fromJson.stdout).toContain(`created the policy of proxy ${proxyId}`);
      expect((await admin.policies.get.query({ proxyId })).policy).toMatchObject({
        maxReplicas: 7,
        mode: "off",
      });

      file(
        "policy.yaml",
        [
          "minReplicas: 1",
          "maxReplicas: 9",
          "strategy: targetTracking",
          "targetCpuPercent: 60",
          "behavior:",
          "  scaleDown:",
          "    stabilizationWindowSeconds: 120",
        ].join("\n"),
      );
      const fromYaml = await asAdmin(["policy", "set", proxyId, "-f", "policy.yaml"]);
      expect(fromYaml.code).toBe(0);
      expect(fromYaml.stdout).toContain(`replaced the policy of proxy ${proxyId}`);

      const got = json<{ source: string; policy: Record<string, unknown> }>(
        await asAdmin(["policy", "get", proxyId, "--json"]),
      );
      expect(got.source).toBe("proxy");
      expect(got.policy).toMatchObject({
        maxReplicas: 9,
        strategy: "targetTracking",
        targetCpuPercent: 60,
        behavior: { scaleDown: { stabilizationWindowSeconds: 120 } },
      });
      const human = await asAdmin(["policy", "get", proxyId]);
      expect(human.stdout).toContain(`# effective policy of proxy ${proxyId} (source: proxy)`);
      expect(human.stdout).toMatch(/^maxReplicas: 9$/m);
    },
    TIMEOUT,
  );

  it(
    "rejects an invalid policy file before sending anything, naming each field, and leaves the server's policy unchanged",
    async () => {
      const proxyId = await registerProxy();
      await admin.policies.upsert.mutate({ proxyId, minReplicas: 1, maxReplicas: 4 });
      const before = await admin.policies.get.query({ proxyId });
      const policyWrites = async () =>
        (await admin.audit.list.query({ entityId: proxyId })).items.filter((entry) =>
          entry.action.startsWith("policy."),
        );
      const auditBefore = await policyWrites();
      expect(auditBefore).toHaveLength(1);

      file(
        "bad-policy.yaml",
        ["minReplicas: 6", "maxReplicas: 3", "scaleUpThreshold: 150", "maxReplicaz: 5"].join("\n"),
      );
      const rejected = await asAdmin(["policy", "set", proxyId, "--file", "bad-policy.yaml"]);
      expect(rejected.code).toBe(1);
      expect(rejected.stdout).toBe("");
      expect(rejected.stderr).toContain("policy file bad-policy.yaml is invalid; nothing was sent");
      expect(rejected.stderr).toContain("maxReplicas: must be ≥ minReplicas (6)");
      expect(rejected.stderr).toContain("scaleUpThreshold: must be a percent in (0, 100]: at most 100");
      expect(rejected.stderr).toContain('Unrecognized key: "maxReplicaz"');

      expect(await admin.policies.get.query({ proxyId })).toEqual(before);
      expect(await policyWrites()).toEqual(auditBefore);

      // Pointed at a port nothing listens on, the answer is still the file's issues: no request was attempted.
      const port = await closedPort();
      const offline = await cli(
        [
          "policy",
          "set",
          proxyId,
          "--file",
          "bad-policy.yaml",
          "--json",
          "--url",
          `http://127.0.0.1:${port}`,
        ],
        { PROXYSCALE_TOKEN: adminToken },
      );
      expect(offline.code).toBe(1);
      const report = JSON.parse(offline.stderr) as { error: { issues: Array<{ field: string }> } };
      expect(report.error.issues.map((issue) => issue.field).sort()).toEqual(
        ["(top level)", "maxReplicas", "scaleUpThreshold"].sort(),
      );

      const notYaml = await asAdmin(["policy", "set", proxyId, "--file", file("broken.json", "{ nope")]);
      expect(notYaml.code).toBe(1);
      expect(notYaml.stderr).toContain("broken.json is not valid JSON");
    },
    TIMEOUT,
  );
});

describe("proxyscale metrics push, evaluate, scale, events, summary", () => {
  it(
    "drives one proxy through the whole loop from the command line",
    async () => {
      const proxyId = await registerProxy();
      // dryRun keeps the server's control loop from scaling on its own while the CLI does it by hand.
      await admin.policies.upsert.mutate({ proxyId, minReplicas: 1, maxReplicas: 5, mode: "dryRun" });

      const pushed = await asAdmin([
        "metrics",
        "push",
        proxyId,
        "--cpu",
        "95",
        "--memory",
        "90",
        "--request-rate",
        "1500",
        "--latency",
        "40",
        "--error-rate",
        "2",
        "--instance",
        "replica-a",
        "--custom",
        "queue_depth=12",
      ]);
      expect(pushed.stderr).toBe("");
      expect(pushed.stdout).toMatch(
        new RegExp(`^recorded 1 sample for proxy ${proxyId}: load score \\d+(\\.\\d+)?\\n$`),
      );

      file(
        "samples.yaml",
        [
          "- { cpuPercent: 90, memoryPercent: 85, requestRate: 1400, avgLatencyMs: 35, errorRatePercent: 1, instanceId: replica-b }",
          "- { cpuPercent: 92, memoryPercent: 88, requestRate: 1450, avgLatencyMs: 38, errorRatePercent: 1, instanceId: replica-c }",
        ].join("\n"),
      );
      const batch = json<{ recorded: number; loadScores: number[] }>(
        await asAdmin(["metrics", "push", proxyId, "--file", "samples.yaml", "--json"]),
      );
      expect(batch.recorded).toBe(2);
      const latest = await admin.metrics.latest.query({ proxyId });
      expect(latest.samples.map((sample) => sample.instanceId).sort()).toEqual([
        "replica-a",
        "replica-b",
        "replica-c",
      ]);
      expect(latest.samples.find((sample) => sample.instanceId === "replica-a")?.custom).toEqual({
        queue_depth: 12,
      });

      const badSample = await asAdmin(["metrics", "push", proxyId, "--cpu", "150", "--memory", "1"]);
      expect(badSample.code).toBe(1);
      expect(badSample.stderr).toContain("--cpu (cpuPercent): must be a percent: at most 100");
      expect(badSample.stderr).toContain("--request-rate (requestRate)");

      const decision = json<{
        action: string;
        explanation: string;
        currentReplicas: number;
        desiredReplicas: number;
      }>(await asAdmin(["evaluate", proxyId, "--json"]));
      expect(decision).toMatchObject({ action: "scale_up", currentReplicas: 1 });
      const explained = await asAdmin(["evaluate", proxyId]);
      expect(explained.code).toBe(0);
      // The human output leads with core's explanation sentence, as the decision carries it.
      expect(explained.stdout.split("\n")[0]).toBe(decision.explanation);
      expect(explained.stdout).toMatch(/^action:\s+scale_up$/m);

      const scaled = await asAdmin(["scale", proxyId, "--replicas", "3", "--reason", "cli test"]);
      expect(scaled.code).toBe(0);
      expect(scaled.stdout).toMatch(/^scaling event [0-9a-f-]{36} is pending: 1 → 3$/m);

      const events = json<{
        items: Array<{ id: string; newReplicas: number; reason: string; status: string }>;
      }>(await asAdmin(["events", proxyId, "--json"]));
      expect(events.items).toHaveLength(1);
      // The server's executor takes the event on at once (actuator "none" completes it), so any status is fine.
      expect(events.items[0]).toMatchObject({ newReplicas: 3, reason: "cli test" });
      const eventTable = await asAdmin(["events", proxyId]);
      expect(eventTable.stdout).toMatch(
        new RegExp(`^${events.items[0]!.id}\\s+scale_up\\s+1 → 3\\s+${events.items[0]!.status}\\s`, "m"),
      );

      const summary = json<{ samples: number; events: { total: number } }>(
        await asAdmin(["summary", proxyId, "--hours", "2", "--json"]),
      );
      expect(summary).toMatchObject({ samples: 3, events: { total: 1 } });
      const summaryText = await asAdmin(["summary", proxyId]);
      expect(summaryText.stdout).toMatch(/^events:\s+1 \(scale_up 1\)$/m);
      expect(summaryText.stdout).toMatch(/^samples:\s+3$/m);
    },
    TIMEOUT,
  );
});

describe("proxyscale failures", () => {
  it(
    "exits 1 with the server's message (and, under --json, its status and issues on stderr)",
    async () => {
      const proxyId = await registerProxy();
      const viewerToken = await signToken({ sub: "viewer-1", role: "viewer", tier: "free", secret });
      const [tooMany, tooManyJson, missing, forbidden] = await Promise.all([
        asAdmin(["scale", proxyId, "--replicas", "99"]),
        asAdmin(["scale", proxyId, "--replicas", "99", "--json"]),
        asAdmin(["evaluate", "00000000-0000-4000-8000-000000000000"]),
        cli(["policy", "set", proxyId, "--file", file("ok.json", "{}")], { PROXYSCALE_TOKEN: viewerToken }),
      ]);
      expect(tooMany.code).toBe(1);
      expect(tooMany.stdout).toBe("");
      expect(tooMany.stderr).toBe(
        "proxyscale: must be within the policy's minReplicas..maxReplicas (1..10) (400 BAD_REQUEST)\n",
      );
      expect(tooManyJson.code).toBe(1);
      expect(JSON.parse(tooManyJson.stderr)).toEqual({
        error: {
          message: "must be within the policy's minReplicas..maxReplicas (1..10)",
          status: 400,
          code: "BAD_REQUEST",
          issues: [
            {
              field: "newReplicaCount",
              message: "must be within the policy's minReplicas..maxReplicas (1..10)",
            },
          ],
        },
      });
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain(
        "proxy 00000000-0000-4000-8000-000000000000 not found (404 NOT_FOUND)",
      );
      expect(forbidden.code).toBe(1);
      expect(forbidden.stderr).toContain(
        "requires role admin or above; your token has role viewer (403 FORBIDDEN)",
      );
      expect(await admin.scaling.events.query({ proxyId })).toMatchObject({ items: [] });
    },
    TIMEOUT,
  );

  it(
    "exits 1 when the server is unreachable or the token is refused, and 2 on bad usage",
    async () => {
      const port = await closedPort();
      const [unreachable, refused, noToken, unknown, badFlag, help] = await Promise.all([
        cli(["proxies", "ls", "--url", `http://127.0.0.1:${port}`], { PROXYSCALE_TOKEN: adminToken }),
        cli(["proxies", "ls"], { PROXYSCALE_TOKEN: "not-a-jwt" }),
        cli(["proxies", "ls"]),
        asAdmin(["proxies", "explode"]),
        asAdmin(["events", "--limit", "many", "x"]),
        cli(["--help"]),
      ]);
      expect(unreachable.code).toBe(1);
      expect(unreachable.stderr).toContain(`cannot reach ProxyScale at http://127.0.0.1:${port}`);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toBe("proxyscale: token is not a JWT (401 UNAUTHORIZED)\n");
      expect(noToken.code).toBe(2);
      expect(noToken.stderr).toContain("no token: pass --token or set PROXYSCALE_TOKEN");
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain("unknown command: proxies explode");
      expect(badFlag.code).toBe(2);
      expect(badFlag.stderr).toContain('--limit must be a whole number between 1 and 500, got "many"');
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/^ {2}policy set\s+store a policy/m);
    },
    TIMEOUT,
  );
});
