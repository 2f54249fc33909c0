import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  type LocalActuatorConfig,
  type MetricsSource,
  metricsSourceSchema,
  parseActuatorConfig,
  parsePolicy,
  type ScalingPolicy,
} from "@proxyscale/core";
import type { Logger } from "@proxyscale/db";
import {
  createProxy,
  type Database,
  listProxies,
  MEMORY_DATA_DIR,
  type ProxyRecord,
  updateProxy,
  upsertPolicy,
} from "@proxyscale/db";
import { findProgram, installHint } from "../actuators/local/template-replica.ts";
import { type HelloUpstream, startHelloUpstream } from "../actuators/local/upstream.ts";
import { errorMessage } from "../actuators/types.ts";
import type { DemoProxyKind } from "../config.ts";
import type { ControlLoop } from "../control/loop.ts";

export const DEMO_PROXY_NAME = "demo-edge";
/** The `sub` of the admin token the embedded start prints: the demo proxy is the admin's. */
export const DEMO_OWNER = "admin";
export const DEMO_FILE_NAME = "demo.json";

/**
 * Tuned so the demo load (a few dozen to 150 requests/s on one machine) visibly scales 1 → 4 → 1 within a
 * couple of minutes: each replica's request share of the load score saturates at 50 requests/s (20 points),
 * so above ~35 requests/s per replica the score passes 15 and it scales up; below ~12 it drops under 6 and it
 * scales down. Workers report every second and samples older than 5 s are not live, so a drained replica's
 * last report soon stops counting.
 */
export const DEMO_POLICY: ScalingPolicy = parsePolicy({
  strategy: "threshold",
  mode: "auto",
  minReplicas: 1,
  maxReplicas: 4,
  targetRequestRate: 50,
  scaleUpThreshold: 15,
  scaleDownThreshold: 6,
  scaleUpCooldownSeconds: 8,
  scaleDownCooldownSeconds: 12,
  metricsMaxAgeSeconds: 5,
  behavior: {
    scaleUp: { stabilizationWindowSeconds: 0 },
    scaleDown: { stabilizationWindowSeconds: 10 },
  },
  fallback: { failureThreshold: 3 },
});

/** What the load command reads from the data directory. */
export interface DemoInfo {
  proxyId: string;
  name: string;
  frontUrl: string;
  upstreamUrl: string;
  serverUrl: string;
}

export interface RunningDemo {
  info: DemoInfo;
  /** Stops the built-in upstream (the proxy's actuator is the control loop's to close). */
  close(): Promise<void>;
}

export interface DemoOptions {
  database: Database;
  control: ControlLoop;
  logger: Logger;
  serverUrl: string;
  /** The front's port; the upstream listens on the next one. 0: free ports. */
  port: number;
  /** Where demo.json goes (the load command reads it). */
  dataDir: string;
  /** What the replicas run (PROXYSCALE_DEMO_PROXY); the Node worker when absent. */
  proxy?: DemoProxyKind;
}

async function findDemoProxy(database: Database): Promise<ProxyRecord | null> {
  let cursor: string | null | undefined;
  do {
    const page = await listProxies(database.db, { ownerId: DEMO_OWNER, limit: 100, cursor });
    const found = page.items.find((proxy) => proxy.name === DEMO_PROXY_NAME);
    if (found) return found;
    cursor = page.nextCursor;
  } while (cursor);
  return null;
}

/**
 * The replica template for PROXYSCALE_DEMO_PROXY, with the programs' absolute paths (Debian keeps them in
 * /usr/sbin, not on every PATH). A missing program is logged with how to install it, and the Node worker runs.
 */
export function demoReplica(
  kind: DemoProxyKind,
  logger: Logger,
  find: (name: string) => string | undefined = findProgram,
): Record<string, unknown> {
  if (kind === "worker") return { template: "worker" };
  const program = find(kind);
  if (!program) {
    logger.warn(
      { proxy: kind, install: installHint(kind) },
      `demo: ${kind} is not installed (${installHint(kind)}); demo-edge runs the Node workers`,
    );
    return { template: "worker" };
  }
  if (kind === "haproxy") return { template: "haproxy", command: program };
  const exporter = find("prometheus-nginx-exporter");
  if (!exporter) {
    logger.warn(
      { install: installHint("prometheus-nginx-exporter") },
      `demo: prometheus-nginx-exporter is not installed (${installHint("prometheus-nginx-exporter")}); nginx replicas run without it`,
    );
  }
  return exporter
    ? { template: "nginx", command: program, exporterCommand: exporter }
    : { template: "nginx", command: program, exporter: false };
}

/**
 * HAProxy and nginx (with its exporter) replicas cannot push: the server scrapes their exporters every second,
 * through the actuator's targets, with the matching built-in mapping. The Node workers push.
 */
export function demoMetricsSource(replica: Record<string, unknown>): MetricsSource {
  const scraped =
    replica.template === "haproxy" || (replica.template === "nginx" && replica.exporter !== false);
  return metricsSourceSchema.parse(
    scraped
      ? {
          kind: "scrape",
          intervalSeconds: 1,
          timeoutMs: 1_000,
          targets: { from: "actuator" },
          mapping: replica.template,
        }
      : { kind: "push" },
  );
}

function demoActuator(
  upstream: HelloUpstream,
  port: number,
  replica: Record<string, unknown>,
): LocalActuatorConfig {
  // Core's defaults, but for a quicker drain and a reporting interval that makes the demo's charts lively.
  return parseActuatorConfig({
    kind: "local",
    upstreamUrl: upstream.url,
    listenPort: port,
    drainTimeoutMs: 10_000,
    reporting: { enabled: true, intervalMs: 1_000 },
    replica,
  }) as LocalActuatorConfig;
}

/** JSON with keys sorted at every level: jsonb keeps its own key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner && typeof inner === "object" && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => a.localeCompare(b)))
      : inner,
  );
}

/**
 * Registers (or reuses) `demo-edge`: a `local` proxy of the admin in front of the built-in upstream, with
 * DEMO_POLICY, and starts its front and first replica. Idempotent: a restart finds the proxy by owner and name,
 * updates its actuator config only when the ports changed, and keeps a policy someone edited.
 */
export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const { database, control, logger } = options;
  const frontPort = options.port;
  const upstream = await startHelloUpstream({
    host: "127.0.0.1",
    port: frontPort === 0 ? 0 : frontPort + 1,
    latencyMs: 5,
    jitterMs: 10,
  });
  try {
    const replica = demoReplica(options.proxy ?? "worker", logger);
    const metricsSource = demoMetricsSource(replica);
    const { kind, ...config } = demoActuator(upstream, frontPort, replica);
    let proxy = await findDemoProxy(database);
    if (!proxy) {
      proxy = await createProxy(database.db, {
        ownerId: DEMO_OWNER,
        // The tier of the admin token the embedded start prints.
        ownerTier: "enterprise",
        name: DEMO_PROXY_NAME,
        environment: "dev",
        actuator: { kind, config: { ...config } },
        metricsSource,
        currentReplicas: DEMO_POLICY.minReplicas,
        actorId: DEMO_OWNER,
      });
      await upsertPolicy(database.db, { proxyId: proxy.id, policy: DEMO_POLICY, actorId: DEMO_OWNER });
      logger.info({ proxyId: proxy.id }, "demo: registered demo-edge");
    } else if (
      proxy.actuator.kind !== kind ||
      canonicalJson(proxy.actuator.config) !== canonicalJson({ ...config }) ||
      canonicalJson(proxy.metricsSource) !== canonicalJson(metricsSource)
    ) {
      proxy = await updateProxy(database.db, {
        id: proxy.id,
        patch: { actuator: { kind, config: { ...config } }, metricsSource },
        actorId: DEMO_OWNER,
      });
    }
    const actuator = await control.ensureActuator(proxy.id);
    const frontUrl = (actuator as { url?: string }).url ?? `http://127.0.0.1:${frontPort}`;
    const info: DemoInfo = {
      proxyId: proxy.id,
      name: DEMO_PROXY_NAME,
      frontUrl,
      upstreamUrl: upstream.url,
      serverUrl: options.serverUrl,
    };
    // In memory there is no data directory for the load command to read.
    if (options.dataDir !== MEMORY_DATA_DIR) {
      mkdirSync(resolve(options.dataDir), { recursive: true, mode: 0o700 });
      writeFileSync(join(resolve(options.dataDir), DEMO_FILE_NAME), `${JSON.stringify(info, null, 2)}\n`, {
        mode: 0o600,
      });
    }
    return { info, close: () => upstream.close() };
  } catch (error) {
    await upstream.close();
    throw new Error(`demo-edge could not start: ${errorMessage(error)}`, { cause: error });
  }
}
