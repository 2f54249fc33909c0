import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** The control loop's Prometheus metrics, registered in the server's registry. */
export interface ControlMetrics {
  evaluation(trigger: "push" | "activation" | "reconcile", outcome: string): void;
  reconcileTick(seconds: number, proxies: number): void;
  reaction(seconds: number): void;
  shardsHeld(count: number): void;
  recovery(outcome: string): void;
}

export function createControlMetrics(registry: Registry): ControlMetrics {
  const evaluations = new Counter({
    name: "proxyscale_control_evaluations_total",
    help: "Control-loop evaluations by trigger (push, activation, reconcile) and outcome (scaled, held, skipped_in_flight, dry_run, paused, fallback)",
    labelNames: ["trigger", "outcome"] as const,
    registers: [registry],
  });
  const tickSeconds = new Histogram({
    name: "proxyscale_control_reconcile_duration_seconds",
    help: "Duration of one reconcile tick over every automatic proxy this server owns",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const tickProxies = new Gauge({
    name: "proxyscale_control_reconcile_proxies",
    help: "Proxies evaluated by the latest reconcile tick",
    registers: [registry],
  });
  const reactionSeconds = new Histogram({
    name: "proxyscale_control_reaction_seconds",
    help: "From the metrics push that triggered a scale to the actuator call",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
  const shards = new Gauge({
    name: "proxyscale_control_shards_held",
    help: "Proxy shards whose lease this server holds (it evaluates and scales their proxies)",
    registers: [registry],
  });
  const recoveries = new Counter({
    name: "proxyscale_control_recoveries_total",
    help: "Events in flight taken over from another server or an earlier run, by outcome",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  return {
    evaluation: (trigger, outcome) => evaluations.inc({ trigger, outcome }),
    reconcileTick(seconds, proxies) {
      tickSeconds.observe(seconds);
      tickProxies.set(proxies);
    },
    reaction: (seconds) => reactionSeconds.observe(seconds),
    shardsHeld: (count) => shards.set(count),
    recovery: (outcome) => recoveries.inc({ outcome }),
  };
}
