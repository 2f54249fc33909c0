import { describe, expect, it } from "vitest";
import {
  actuatorConfigSchema,
  fillReplicaPlaceholders,
  type LocalActuatorConfig,
  parseActuatorConfig,
  REPLICA_HEALTH_PATH,
  replicaPlaceholderValues,
  resolveReplicaTemplate,
} from "../src/index.ts";

function issues(replica: unknown) {
  const result = actuatorConfigSchema.safeParse({
    kind: "local",
    upstreamUrl: "http://127.0.0.1:9000",
    replica,
  });
  expect(result.success).toBe(false);
  return result.error!.issues.map((issue) => ({ path: issue.path.join("."), message: issue.message }));
}

function local(replica: unknown, upstreamUrl = "http://127.0.0.1:9000"): LocalActuatorConfig {
  return parseActuatorConfig({ kind: "local", upstreamUrl, replica }) as LocalActuatorConfig;
}

describe("local replica templates", () => {
  it("defaults to the Node worker, which is not a template", () => {
    const config = parseActuatorConfig({ kind: "local", upstreamUrl: "http://127.0.0.1:9000" });
    expect(config).toMatchObject({ replica: { template: "worker" } });
    expect(resolveReplicaTemplate({ template: "worker" }, "http://127.0.0.1:9000")).toBeUndefined();
  });

  it("names the field and the rule for a bad template", () => {
    expect(issues({ template: "envoy" })).toEqual([
      { path: "replica.template", message: "must have template worker, haproxy, nginx, custom" },
    ]);
    expect(issues({ template: "custom", command: [] })).toContainEqual({
      path: "replica.command",
      message: "must name the program to run",
    });
    expect(issues({ template: "custom", command: ["/bin/proxy", "--listen", "{prot}", "{port}"] })).toEqual([
      {
        path: "replica.command.2",
        message: expect.stringMatching(/^has an unknown placeholder \{prot\}: use \{port\}, /),
      },
    ]);
    expect(issues({ template: "custom", command: ["/bin/proxy"] })).toEqual([
      {
        path: "replica.command",
        message: "must pass {port} in an argument or in configTemplate: the front forwards to it",
      },
    ]);
    expect(issues({ template: "custom", command: ["/bin/proxy", "{port}"], configTemplate: "x" })).toEqual([
      {
        path: "replica.command",
        message: "must pass {configFile} in an argument: configTemplate is written there",
      },
    ]);
    expect(issues({ template: "custom", command: ["/bin/proxy", "{port}", "{configFile}"] })).toEqual([
      { path: "replica.configTemplate", message: "is required when the command passes {configFile}" },
    ]);
    expect(
      issues({
        template: "custom",
        command: ["/bin/proxy", "{port}"],
        metrics: { port: "exporterPort" },
      }),
    ).toEqual([
      {
        path: "replica.metrics.port",
        message: "is exporterPort, which only an exporter listens on: add exporter.command",
      },
    ]);
    expect(
      issues({
        template: "custom",
        command: ["/bin/proxy", "{port}"],
        readiness: { kind: "udp", path: "health" },
        stop: { signal: "SIGSTOP", timeoutMs: 0 },
      }),
    ).toEqual([
      { path: "replica.readiness.kind", message: "must be http or tcp" },
      { path: "replica.readiness.path", message: "must be a path starting with / (no spaces)" },
      {
        path: "replica.stop.signal",
        message: "must be one of SIGTERM, SIGQUIT, SIGINT, SIGHUP, SIGUSR1, SIGUSR2",
      },
      { path: "replica.stop.timeoutMs", message: "must be at least 1 ms" },
    ]);
    expect(issues({ template: "haproxy", maxConnections: 0, extra: true })).toEqual([
      { path: "replica.maxConnections", message: "must be at least 1" },
      { path: "replica", message: 'Unrecognized key: "extra"' },
    ]);
  });

  it("expands haproxy for the proxy's upstream, with its exporter and probes on the second port", () => {
    const template = resolveReplicaTemplate(
      local({ template: "haproxy" }, "http://upstream.internal:8081/base/").replica,
      "http://upstream.internal:8081/base/",
    )!;
    expect(template.command).toEqual(["haproxy", "-db", "-f", "{configFile}"]);
    expect(template.stop).toEqual({ signal: "SIGUSR1", timeoutMs: 10_000 });
    expect(template.readiness).toMatchObject({
      kind: "http",
      path: REPLICA_HEALTH_PATH,
      port: "metricsPort",
    });
    expect(template.metrics).toEqual({ port: "metricsPort", path: "/metrics" });
    const values = replicaPlaceholderValues({
      upstreamUrl: "http://upstream.internal:8081/base/",
      instance: "edge-7",
      dir: "/tmp/r7",
      configFile: "/tmp/r7/haproxy.cfg",
      port: 4001,
      metricsPort: 4002,
      exporterPort: 4003,
    });
    const config = fillReplicaPlaceholders(template.configTemplate!, values);
    expect(config).toContain("bind 127.0.0.1:4001");
    expect(config).toContain("bind 127.0.0.1:4002");
    expect(config).toContain("server upstream upstream.internal:8081\n");
    expect(config).toContain("http-request set-path /base%[path]");
    expect(config).toContain("http-request use-service prometheus-exporter if { path /metrics }");
    expect(config).toContain("http-response set-header x-proxyscale-instance edge-7");
    expect(config).not.toContain("maxconn");
  });

  it("expands nginx with its non-root paths in the replica's directory, and the exporter sidecar unless turned off", () => {
    const url = "http://127.0.0.1:9000";
    const withExporter = resolveReplicaTemplate(local({ template: "nginx" }).replica, url)!;
    expect(withExporter.command).toEqual([
      "nginx",
      "-p",
      "{dir}",
      "-c",
      "{configFile}",
      "-e",
      "{dir}/error.log",
      "-g",
      "daemon off;",
    ]);
    expect(withExporter.stop.signal).toBe("SIGQUIT");
    expect(withExporter.metrics).toEqual({ port: "exporterPort", path: "/metrics" });
    expect(withExporter.exporter?.command).toContain("http://127.0.0.1:{metricsPort}/stub_status");
    for (const line of [
      "pid {dir}/nginx.pid;",
      "error_log {dir}/error.log warn;",
      "proxy_temp_path {dir}/proxy;",
    ]) {
      expect(withExporter.configTemplate).toContain(line);
    }
    const without = resolveReplicaTemplate(local({ template: "nginx", exporter: false }).replica, url)!;
    expect(without.exporter).toBeUndefined();
    expect(without.metrics).toBeUndefined();
  });
});
