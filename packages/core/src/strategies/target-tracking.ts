/**
 * Kubernetes HPA's replica calculator (pkg/controller/podautoscaler/replica_calculator.go:
 * GetResourceReplicas / calcPlainMetricReplicas, with KEP-4951 per-direction tolerances), one proposal per
 * metric with a target; the largest proposal wins (horizontal.go computeReplicasForMetrics).
 */
import { z } from "zod";
import type { Limit, MetricProposal } from "../decision.ts";
import { formatNumber, replicas } from "../format.ts";
import { PG_INTEGER_MAX } from "../storable.ts";
import type { Strategy, StrategyInput } from "./types.ts";

export interface MetricReplicaInput {
  currentReplicas: number;
  /** Ready replicas with a reading: the average `value` is theirs. */
  readyWithMetrics: number;
  /** Ready replicas without a reading. */
  missingReplicas: number;
  /** Unready (unhealthy) replicas: their readings are ignored. */
  unreadyReplicas: number;
  value: number;
  target: number;
  /**
   * What a missing replica is assumed to use when the ready ones say "scale down": the target for plain
   * metrics, max(100, target) percent for utilization metrics (cpu, memory), as HPA does.
   */
  missingValueOnScaleDown: number;
  tolerance: { scaleUp: number; scaleDown: number };
}

export interface MetricReplicaResult {
  replicas: number;
  /** value / target over the ready replicas with readings. */
  ratio: number;
  /** True when the tolerance held the count. */
  withinTolerance: boolean;
}

function withinTolerance(ratio: number, tolerance: MetricReplicaInput["tolerance"]): boolean {
  return 1 - tolerance.scaleDown <= ratio && ratio <= 1 + tolerance.scaleUp;
}

/** HPA's per-metric replica count, including its missing- and unready-pod rules. */
export function hpaReplicasForMetric(input: MetricReplicaInput): MetricReplicaResult {
  const { currentReplicas, readyWithMetrics, missingReplicas, unreadyReplicas, value, target, tolerance } =
    input;
  const ratio = value / target;
  const scaleUpWithUnready = unreadyReplicas > 0 && ratio > 1;

  if (!scaleUpWithUnready && missingReplicas === 0) {
    if (withinTolerance(ratio, tolerance)) return { replicas: currentReplicas, ratio, withinTolerance: true };
    return { replicas: Math.ceil(ratio * readyWithMetrics), ratio, withinTolerance: false };
  }

  let total = value * readyWithMetrics;
  let counted = readyWithMetrics;
  if (missingReplicas > 0) {
    // On a scale-down missing replicas count as using the fallback, on a scale-up as idle; at exactly the
    // target HPA leaves them out.
    if (ratio < 1) {
      total += input.missingValueOnScaleDown * missingReplicas;
      counted += missingReplicas;
    } else if (ratio > 1) {
      counted += missingReplicas;
    }
  }
  if (scaleUpWithUnready) counted += unreadyReplicas;

  const newRatio = total / counted / target;
  if (withinTolerance(newRatio, tolerance))
    return { replicas: currentReplicas, ratio, withinTolerance: true };
  // The fill-ins flipped the direction: keep the current count.
  if ((ratio < 1 && newRatio > 1) || (ratio > 1 && newRatio < 1)) {
    return { replicas: currentReplicas, ratio, withinTolerance: false };
  }
  const proposed = Math.ceil(newRatio * counted);
  if ((newRatio < 1 && proposed > currentReplicas) || (newRatio > 1 && proposed < currentReplicas)) {
    return { replicas: currentReplicas, ratio, withinTolerance: false };
  }
  return { replicas: proposed, ratio, withinTolerance: false };
}

export const targetTrackingBasisSchema = z.object({
  strategy: z.literal("targetTracking"),
  /** The metric whose proposal won (null when no serving replica had readings). */
  metric: z.string().nullable(),
  value: z.number(),
  target: z.number(),
  withinTolerance: z.boolean(),
  tolerance: z.number(),
  recommendedReplicas: z.number().int(),
});
export type TargetTrackingBasis = z.output<typeof targetTrackingBasisSchema>;

/** Names in MetricProposal.metric and in stepScaling.metric. */
export function metricLabel(metric: string, value: number): string {
  switch (metric) {
    case "cpuPercent":
      return `cpu ${formatNumber(value)}%`;
    case "memoryPercent":
      return `memory ${formatNumber(value)}%`;
    case "errorRatePercent":
      return `error rate ${formatNumber(value)}%`;
    case "requestRate":
      return `requestRate ${formatNumber(value)}/s`;
    case "avgLatencyMs":
      return `latency ${formatNumber(value)}ms`;
    case "loadScore":
      return `load score ${formatNumber(value)}`;
    default:
      return `${metric.startsWith("custom.") ? metric.slice(7) : metric} ${formatNumber(value)}`;
  }
}

function targetLabel(metric: string, target: number): string {
  switch (metric) {
    case "cpuPercent":
    case "memoryPercent":
    case "errorRatePercent":
      return `${formatNumber(target)}%`;
    case "requestRate":
      return `${formatNumber(target)}/s`;
    case "avgLatencyMs":
      return `${formatNumber(target)}ms`;
    default:
      return formatNumber(target);
  }
}

function proposeFor(
  input: StrategyInput,
  tolerance: MetricReplicaInput["tolerance"],
  metric: string,
  value: number,
  target: number,
  utilization: boolean,
): MetricProposal {
  const result = hpaReplicasForMetric({
    currentReplicas: input.currentReplicas,
    readyWithMetrics: input.readyWithMetrics,
    missingReplicas: input.missingReplicas,
    unreadyReplicas: input.unhealthyReplicas,
    value,
    target,
    missingValueOnScaleDown: utilization ? Math.max(100, target) : target,
    tolerance,
  });
  return {
    metric,
    value,
    target,
    // A target near 0 (5e-324 is a valid positive number) makes the ratio Infinity: the decision keeps finite
    // numbers and a count its log's integer columns hold.
    ratio: Math.min(result.ratio, Number.MAX_VALUE),
    proposedReplicas: Math.min(result.replicas, PG_INTEGER_MAX),
    withinTolerance: result.withinTolerance,
  };
}

export const targetTrackingStrategy: Strategy<TargetTrackingBasis> = {
  name: "targetTracking",
  usesCooldowns: false,
  propose(input: StrategyInput) {
    const { policy, currentReplicas, metrics: values } = input;
    const { scaleUp, scaleDown } = policy.behavior;
    const tolerance = { scaleUp: scaleUp.tolerance, scaleDown: scaleDown.tolerance };
    const proposals: MetricProposal[] = [];
    const limits: Limit[] = [];
    let recommended = currentReplicas;
    let winner: MetricProposal | undefined;
    let missingMetric: string | undefined;

    // HPA cannot compute a count without a ready replica's reading ("did not receive metrics for any ready pods").
    if (input.readyWithMetrics > 0) {
      proposals.push(
        proposeFor(input, tolerance, "cpuPercent", values.cpuPercent, policy.targetCpuPercent, true),
      );
      proposals.push(
        proposeFor(input, tolerance, "memoryPercent", values.memoryPercent, policy.targetMemoryPercent, true),
      );
      proposals.push(
        proposeFor(input, tolerance, "requestRate", values.requestRate, policy.targetRequestRate, false),
      );
      if (policy.targetLatencyMs !== undefined) {
        proposals.push(
          proposeFor(input, tolerance, "avgLatencyMs", values.avgLatencyMs, policy.targetLatencyMs, false),
        );
      }
      for (const name in policy.customMetricTargets) {
        const value = values.custom?.[name];
        if (value === undefined) missingMetric ??= `custom.${name}`;
        else
          proposals.push(
            proposeFor(input, tolerance, `custom.${name}`, value, policy.customMetricTargets[name]!, false),
          );
      }
      for (const proposal of proposals) {
        if (winner === undefined || proposal.proposedReplicas > winner.proposedReplicas) winner = proposal;
      }
      recommended = winner!.proposedReplicas;
    }

    // HPA: with a metric unavailable, never scale down on the others' say-so.
    if (missingMetric !== undefined && recommended < currentReplicas) {
      limits.push({
        kind: "noMetrics",
        liveSamples: input.observation.liveSamples,
        maxAgeSeconds: policy.metricsMaxAgeSeconds,
        metric: missingMetric,
      });
      recommended = currentReplicas;
    }
    if (recommended === currentReplicas) {
      for (const p of proposals) {
        if (p.withinTolerance && p.ratio !== 1) {
          const up = p.ratio > 1;
          limits.push({
            kind: "tolerance",
            direction: up ? "scale_up" : "scale_down",
            tolerance: up ? tolerance.scaleUp : tolerance.scaleDown,
            ratio: p.ratio,
            metric: p.metric,
          });
        }
      }
    }

    const top = winner;
    return {
      recommendedReplicas: recommended,
      metrics: proposals,
      limits,
      basis: {
        strategy: "targetTracking",
        metric: top?.metric ?? null,
        value: top?.value ?? 0,
        target: top?.target ?? 0,
        withinTolerance: top?.withinTolerance ?? false,
        tolerance: top !== undefined && top.ratio > 1 ? tolerance.scaleUp : tolerance.scaleDown,
        recommendedReplicas: recommended,
      },
    };
  },
  describe(basis) {
    const to = replicas(basis.recommendedReplicas);
    if (basis.metric === null) return `no serving replica with readings → ${to}`;
    const reading = `${metricLabel(basis.metric, basis.value)} vs target ${targetLabel(basis.metric, basis.target)}`;
    if (basis.withinTolerance)
      return `${reading} within tolerance ${formatNumber(basis.tolerance, 2)} → ${to}`;
    return `${reading} → ${to}`;
  },
};
