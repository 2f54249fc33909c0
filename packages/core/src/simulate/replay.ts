/**
 * Replays recorded inputs — samples as they were pushed, and optionally the replica changes the actuator made —
 * through the simulator's decision trail (`DecisionTrail`, the one `simulate` uses): one decision per push, as the
 * push-driven control loop makes them. For checking the simulator against the live loop (the identity test in
 * apps/server/test/control/simulator-identity.test.ts) and for replaying a proxy's raw samples.
 */
import type { Decision } from "../decision.ts";
import { executes } from "../engine.ts";
import type { MetricSample } from "../metrics.ts";
import { DEFAULT_RECONCILE_SECONDS, type ScalingPolicy } from "../policy.ts";
import { DecisionTrail } from "./trail.ts";

export interface RecordedReplayInput {
  policy: ScalingPolicy;
  /** Replicas running before the first push. */
  initialReplicas: number;
  /** When the proxy was registered (epoch ms): fallback counts missed intervals from then. */
  createdAt: number;
  /** Default DEFAULT_RECONCILE_SECONDS. */
  reconcileIntervalMs?: number;
  /**
   * The pushes, in time order: each stores its samples (the latest per instance is kept, as the store keeps it;
   * a sample without `instanceId` is a fleet average) and is decided at `at`.
   */
  pushes: ReadonlyArray<{ at: number; samples: readonly MetricSample[] }>;
  /**
   * The scales as they happened (the event rows: `at` is the row's createdAt, and the count is `toReplicas` from
   * then on). Given, they are the replica changes, and executed decisions change nothing by themselves; absent,
   * an executed decision scales at once at its own time (an actuator that completes immediately).
   */
  replicaChanges?: ReadonlyArray<{ at: number; fromReplicas: number; toReplicas: number }>;
}

/** One decision per push, in push order. */
export function replayRecorded(input: RecordedReplayInput): Decision[] {
  const trail = new DecisionTrail(input.policy, {
    createdAt: input.createdAt,
    reconcileIntervalMs: input.reconcileIntervalMs ?? DEFAULT_RECONCILE_SECONDS * 1000,
    initialReplicas: input.initialReplicas,
    explain: true,
  });
  const latestByInstance = new Map<string, MetricSample>();
  let fleetAverage: MetricSample | undefined;
  const fleet = {
    currentReplicas: input.initialReplicas,
    unhealthyReplicas: 0,
    samples: [] as MetricSample[],
    lastSampleAt: null as number | null,
  };
  const changes = input.replicaChanges;
  let nextChange = 0;
  const decisions: Decision[] = [];
  for (const push of input.pushes) {
    while (changes !== undefined && nextChange < changes.length && changes[nextChange]!.at <= push.at) {
      const change = changes[nextChange++]!;
      trail.recordScale(change.at, change.fromReplicas, change.toReplicas);
      fleet.currentReplicas = change.toReplicas;
    }
    for (const sample of push.samples) {
      if (sample.instanceId === undefined) {
        if (fleetAverage === undefined || sample.at >= fleetAverage.at) fleetAverage = sample;
      } else {
        const known = latestByInstance.get(sample.instanceId);
        if (known === undefined || sample.at >= known.at) latestByInstance.set(sample.instanceId, sample);
      }
      if (fleet.lastSampleAt === null || sample.at > fleet.lastSampleAt) fleet.lastSampleAt = sample.at;
    }
    fleet.samples = [...latestByInstance.values()];
    if (fleetAverage !== undefined) fleet.samples.push(fleetAverage);
    const decision = trail.decide(push.at, fleet);
    trail.record(decision, "push");
    if (changes === undefined && executes(decision)) {
      trail.recordScale(push.at, decision.currentReplicas, decision.desiredReplicas);
      fleet.currentReplicas = decision.desiredReplicas;
    }
    decisions.push(decision);
  }
  return decisions;
}
