/**
 * Runs the engine the way the control loop will: every 30 s it decides on the seed's default policy, the
 * (simulated) actuator applies the decision at once, and the event and recommendation are fed back into the
 * next state. Demand ramps up, holds, ramps down and settles. Prints one line per decision.
 */
import type { RecommendationRecord, ScaleEventRecord } from "./decision.ts";
import { decide } from "./engine.ts";
import type { MetricSample } from "./metrics.ts";
import { DEFAULT_POLICY } from "./policy.ts";

const TICK_SECONDS = 30;
const START = Date.UTC(2025, 0, 1, 12, 0, 0);
/** One replica serves this many req/s at 100% CPU: the default policy's targetRequestRate. */
const REPLICA_CAPACITY_RPS = DEFAULT_POLICY.targetRequestRate;
/** History older than this no longer matters (longest window: 300 s, longest cooldown: 300 s). */
const HISTORY_MS = 600_000;

/** Fleet demand in req/s at minute `m`: ramp up, hold, ramp down, settle. */
function demandAt(minute: number): number {
  if (minute < 8) return 600 + minute * 800;
  if (minute < 14) return 7000;
  if (minute < 20) return 7000 - (minute - 14) * 1050;
  return 700;
}

function samplesFor(replicas: number, demand: number, now: number): MetricSample[] {
  const perReplica = replicas === 0 ? 0 : demand / replicas;
  const utilization = Math.min(1, perReplica / REPLICA_CAPACITY_RPS);
  return Array.from({ length: replicas }, (_, i) => ({
    instanceId: `proxy-${i}`,
    at: now - 2000,
    cpuPercent: 5 + 90 * utilization,
    memoryPercent: 30 + 60 * utilization,
    requestRate: perReplica,
    avgLatencyMs: 12 + 80 * utilization ** 4,
    errorRatePercent: utilization > 0.95 ? 4 : 0,
  }));
}

function clock(now: number): string {
  const total = Math.round((now - START) / 1000);
  return `t+${String(Math.floor(total / 60)).padStart(2, "0")}:${String(total % 60).padStart(2, "0")}`;
}

let replicas = 1;
let events: ScaleEventRecord[] = [];
let recommendations: RecommendationRecord[] = [];

console.log(
  `ProxyScale engine demo: default policy (${DEFAULT_POLICY.strategy}; scale up above ${DEFAULT_POLICY.scaleUpThreshold}, ` +
    `down below ${DEFAULT_POLICY.scaleDownThreshold}; cooldowns ${DEFAULT_POLICY.scaleUpCooldownSeconds}s/` +
    `${DEFAULT_POLICY.scaleDownCooldownSeconds}s; replicas ${DEFAULT_POLICY.minReplicas}..${DEFAULT_POLICY.maxReplicas})\n`,
);
for (let now = START; now <= START + 30 * 60_000; now += TICK_SECONDS * 1000) {
  const demand = demandAt((now - START) / 60_000);
  const decision = decide(
    DEFAULT_POLICY,
    {
      currentReplicas: replicas,
      unhealthyReplicas: 0,
      samples: samplesFor(replicas, demand, now),
      recentEvents: events,
      recommendations,
      lastSampleAt: now - 2000,
      createdAt: START,
      activeEvent: null,
      reconcileIntervalMs: TICK_SECONDS * 1000,
    },
    now,
  );
  console.log(`${clock(now)}  ${String(Math.round(demand)).padStart(4)} req/s  ${decision.explanation}`);
  recommendations = [...recommendations, decision.recommendation].filter((r) => r.at > now - HISTORY_MS);
  if (decision.action !== "none") {
    events = [...events, { at: now, fromReplicas: replicas, toReplicas: decision.desiredReplicas }].filter(
      (e) => e.at > now - HISTORY_MS,
    );
    replicas = decision.desiredReplicas;
  }
}
