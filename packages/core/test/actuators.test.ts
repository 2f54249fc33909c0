import { describe, expect, it } from "vitest";
import {
  actuatorConfigSchema,
  exponentialBackoffMs,
  parseActuatorConfig,
  REDACTED,
  redactActuatorConfig,
} from "../src/actuators.ts";

function issuesOf(input: unknown) {
  const result = actuatorConfigSchema.safeParse(input);
  if (result.success) throw new Error("expected the config to be rejected");
  return result.error.issues.map((issue) => ({ path: issue.path.join("."), message: issue.message }));
}

describe("actuator config schemas", () => {
  it("fills each kind's defaults", () => {
    const local = parseActuatorConfig({ kind: "local", upstreamUrl: "http://127.0.0.1:9000" });
    expect(local).toMatchObject({
      kind: "local",
      listenHost: "127.0.0.1",
      listenPort: 0,
      balance: "leastConnections",
      reporting: { enabled: true, intervalMs: 5000 },
    });
    const kube = parseActuatorConfig({ kind: "kubernetes", name: "edge" });
    expect(kube).toMatchObject({
      workload: "deployment",
      credentials: {
        source: "inCluster",
        serviceAccountDir: "/var/run/secrets/kubernetes.io/serviceaccount",
      },
      conflictRetries: 5,
    });
    const webhook = parseActuatorConfig({
      kind: "webhook",
      url: "https://ops.example/scale",
      secret: "s".repeat(16),
    });
    expect(webhook).toMatchObject({ maxAttempts: 4, timeoutMs: 10_000, headers: {} });
  });

  it("names the field and rule of every bad value", () => {
    expect(issuesOf({ kind: "local", upstreamUrl: "ftp://host" })).toEqual([
      { path: "upstreamUrl", message: "must be an http:// or https:// URL" },
    ]);
    expect(issuesOf({ kind: "kubernetes", name: "Edge_1" })[0]?.path).toBe("name");
    expect(issuesOf({ kind: "kubernetes", name: "edge", service: "1-edge" })).toEqual([
      {
        path: "service",
        message:
          "must be a DNS-1035 label: a lowercase letter, then lowercase letters, digits and -, at most 63 characters",
      },
    ]);
    expect(
      issuesOf({ kind: "webhook", url: "https://h/x", secret: "short", headers: { "X-ProxyScale-Id": "1" } }),
    ).toEqual([
      { path: "secret", message: "must be at least 16 characters" },
      {
        path: "headers.X-ProxyScale-Id",
        message: "must not be Content-Type, Content-Length, Host or X-ProxyScale-*: ProxyScale sets those",
      },
    ]);
    expect(issuesOf({ kind: "command", command: ["scale-fleet", "--to", "3"] })).toEqual([
      { path: "command", message: "must pass {replicas} in an argument" },
    ]);
    expect(issuesOf({ kind: "command", command: [] })[0]?.message).toBe("must name the program to run");
    expect(issuesOf({ kind: "none", extra: 1 })[0]?.path).toBe("");
    expect(issuesOf({ kind: "ec2" })[0]?.path).toBe("kind");
  });

  it("redacts every secret and nothing else", () => {
    const webhook = parseActuatorConfig({
      kind: "webhook",
      url: "https://ops.example/scale",
      secret: "a-very-secret-key-123",
      headers: { Authorization: "Bearer xyz" },
    });
    expect(redactActuatorConfig(webhook)).toMatchObject({
      url: "https://ops.example/scale",
      secret: REDACTED,
      headers: { Authorization: REDACTED },
    });
    const command = parseActuatorConfig({
      kind: "command",
      command: ["scale", "{replicas}"],
      env: { API_KEY: "k" },
    });
    expect(redactActuatorConfig(command)).toMatchObject({
      command: ["scale", "{replicas}"],
      env: { API_KEY: REDACTED },
    });
    const local = parseActuatorConfig({
      kind: "local",
      upstreamUrl: "http://127.0.0.1:1",
      reporting: { token: "jwt" },
    });
    expect(JSON.stringify(redactActuatorConfig(local))).not.toContain("jwt");
    expect(webhook).toMatchObject({ secret: "a-very-secret-key-123" });
  });
});

describe("exponentialBackoffMs", () => {
  it("doubles from the initial delay up to the cap", () => {
    const delays = [1, 2, 3, 4, 5, 6].map((attempt) =>
      exponentialBackoffMs(attempt, { initialMs: 100, maxMs: 1000 }),
    );
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it("takes off at most the jitter fraction", () => {
    expect(exponentialBackoffMs(3, { initialMs: 100, maxMs: 10_000, jitter: 0.5 }, () => 1)).toBe(200);
    expect(exponentialBackoffMs(3, { initialMs: 100, maxMs: 10_000, jitter: 0.5 }, () => 0)).toBe(400);
  });
});
