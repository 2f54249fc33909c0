import type { Telemetry } from "@proxyscale/db";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** The server's Prometheus metrics, in a registry of its own (no global state: tests run several servers). */
export interface ServerMetrics {
  registry: Registry;
  telemetry: Telemetry;
  observeRequest(route: string, method: string, status: number, seconds: number): void;
}

export function createServerMetrics(options: { defaultMetrics?: boolean } = {}): ServerMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true)
    collectDefaultMetrics({ register: registry, prefix: "proxyscale_process_" });

  const requests = new Counter({
    name: "proxyscale_http_requests_total",
    help: "HTTP requests by route, method and status",
    labelNames: ["route", "method", "status"] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: "proxyscale_http_request_duration_seconds",
    help: "HTTP request latency by route, method and status",
    labelNames: ["route", "method", "status"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const evaluations = new Counter({
    name: "proxyscale_evaluations_total",
    help: "Scaling evaluations by strategy and action",
    labelNames: ["strategy", "action"] as const,
    registers: [registry],
  });
  const scalingEvents = new Counter({
    name: "proxyscale_scaling_events_total",
    help: "Scaling event transitions by type and status (pending when created, then the final status)",
    labelNames: ["type", "status"] as const,
    registers: [registry],
  });
  const currentReplicas = new Gauge({
    name: "proxyscale_proxy_current_replicas",
    help: "Replicas running, per proxy, at its latest evaluation",
    labelNames: ["proxy_id"] as const,
    registers: [registry],
  });
  const desiredReplicas = new Gauge({
    name: "proxyscale_proxy_desired_replicas",
    help: "Replicas wanted, per proxy, at its latest evaluation or scale",
    labelNames: ["proxy_id"] as const,
    registers: [registry],
  });
  const loadScore = new Gauge({
    name: "proxyscale_proxy_load_score",
    help: "Composite load score (0-100) of the latest sample, per proxy",
    labelNames: ["proxy_id"] as const,
    registers: [registry],
  });

  return {
    registry,
    observeRequest(route, method, status, seconds) {
      const labels = { route, method, status: String(status) };
      requests.inc(labels);
      latency.observe(labels, seconds);
    },
    telemetry: {
      sampleRecorded(proxyId, score) {
        loadScore.set({ proxy_id: proxyId }, score);
      },
      decisionMade(proxy, decision) {
        evaluations.inc({ strategy: decision.strategy, action: decision.action });
        currentReplicas.set({ proxy_id: proxy.id }, decision.currentReplicas);
        desiredReplicas.set({ proxy_id: proxy.id }, decision.desiredReplicas);
        if (decision.loadScore !== null) loadScore.set({ proxy_id: proxy.id }, decision.loadScore);
      },
      scalingEventChanged(event) {
        scalingEvents.inc({ type: event.eventType, status: event.status });
        if (event.status === "pending") desiredReplicas.set({ proxy_id: event.proxyId }, event.newReplicas);
        if (event.status === "completed") currentReplicas.set({ proxy_id: event.proxyId }, event.newReplicas);
      },
      proxyRemoved(proxyId) {
        for (const gauge of [currentReplicas, desiredReplicas, loadScore])
          gauge.remove({ proxy_id: proxyId });
      },
    },
  };
}
