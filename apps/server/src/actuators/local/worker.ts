/**
 * The built-in ProxyScale proxy worker: one replica of a `local` proxy. A reverse proxy to the configured
 * upstream that reports its own metrics with the SDK's MetricsReporter. Started by the local actuator
 * (config in PROXYSCALE_WORKER_CONFIG, readiness over IPC); SIGTERM drains it.
 */
import { Agent, createServer } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { AddressInfo } from "node:net";
import { MetricsReporter } from "@proxyscale/sdk/reporter";
import { type ForwardOutcome, forwardRequest, forwardUpgrade, targetFromUrl } from "./forward.ts";
import {
  INSTANCE_HEADER,
  WORKER_CONFIG_ENV,
  WORKER_HEALTH_PATH,
  type WorkerReadyMessage,
  workerConfigSchema,
} from "./protocol.ts";

function log(level: "info" | "warn" | "error", msg: string, fields: Record<string, unknown> = {}) {
  process.stdout.write(
    `${JSON.stringify({ level, time: Date.now(), instanceId: config.instanceId, msg, ...fields })}\n`,
  );
}

const parsed = workerConfigSchema.safeParse(JSON.parse(process.env[WORKER_CONFIG_ENV] ?? "{}"));
if (!parsed.success) {
  const fields = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ");
  process.stderr.write(`proxyscale worker: invalid ${WORKER_CONFIG_ENV}: ${fields}\n`);
  process.exit(2);
}
const config = parsed.data;

// Idle upstream sockets are dropped after 4 s, before Node's default 5 s server keep-alive timeout can race us.
const agentOptions = { keepAlive: true, maxSockets: 512, timeout: 4_000 };
const upstreamAgent = config.upstreamUrl.startsWith("https:")
  ? new HttpsAgent(agentOptions)
  : new Agent(agentOptions);
const upstream = targetFromUrl(config.upstreamUrl, upstreamAgent);
const reporter = config.reporting
  ? new MetricsReporter({
      http: { url: config.reporting.url, token: config.reporting.token, proxyId: config.reporting.proxyId },
      instanceId: config.instanceId,
      sampleIntervalMs: config.reporting.intervalMs,
      onError: (error) => log("warn", "metrics push failed", { error: error.message }),
    }).start()
  : undefined;

let inFlight = 0;
let draining = false;

const server = createServer((req, res) => {
  if (req.url === WORKER_HEALTH_PATH) {
    res.writeHead(draining ? 503 : 200, { "content-type": "application/json" });
    res.end(JSON.stringify({ instanceId: config.instanceId, inFlight, draining }));
    return;
  }
  const startedAt = performance.now();
  inFlight += 1;
  const responseHeaders: Record<string, string> = { [INSTANCE_HEADER]: config.instanceId };
  if (draining) responseHeaders.connection = "close";
  void forwardRequest(req, res, upstream, { responseHeaders, timeoutMs: config.upstreamTimeoutMs })
    .catch((error: Error): ForwardOutcome => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" }).end("proxy error\n");
      return { kind: "failed", error, retryable: false };
    })
    .then((outcome) => {
      inFlight -= 1;
      const ok = outcome.kind === "responded" && outcome.status < 500;
      reporter?.recordRequest(performance.now() - startedAt, ok);
      if (draining && inFlight === 0) void finishDrain();
    });
});
server.on("upgrade", (req, socket, head) => {
  if (draining) {
    socket.end("HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\r\n");
    return;
  }
  void forwardUpgrade(req, socket, head, upstream, {
    responseHeaders: { [INSTANCE_HEADER]: config.instanceId },
  });
});
// Longer than the front's idle socket timeout, so the front always closes idle connections first.
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;

let finishing: Promise<void> | undefined;
function finishDrain(): Promise<void> {
  finishing ??= (async () => {
    server.closeAllConnections();
    await reporter?.stop();
    upstreamAgent.destroy();
    log("info", "drained, exiting");
    process.exit(0);
  })();
  return finishing;
}

/** Stop taking connections, let in-flight requests finish (up to the drain timeout), then exit. */
function drain(reason: string) {
  if (draining) return;
  draining = true;
  log("info", "draining", { reason, inFlight });
  server.close();
  server.closeIdleConnections();
  if (inFlight === 0) void finishDrain();
  else setTimeout(() => void finishDrain(), config.drainTimeoutMs).unref();
}

process.on("SIGTERM", () => drain("SIGTERM"));
process.on("SIGINT", () => drain("SIGINT"));
// The actuator went away: do not linger as an orphan.
process.on("disconnect", () => drain("parent disconnected"));

server.listen(config.port, config.host, () => {
  const { port } = server.address() as AddressInfo;
  const ready: WorkerReadyMessage = { type: "ready", port, instanceId: config.instanceId };
  if (process.send) process.send(ready);
  log("info", "listening", { port, upstream: `${upstream.hostname}:${upstream.port}` });
});
server.on("error", (error) => {
  process.stderr.write(`proxyscale worker: ${error.message}\n`);
  process.exit(1);
});
