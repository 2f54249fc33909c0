/**
 * Kubernetes HPA's own test cases, ported with their numbers from kubernetes/kubernetes
 * pkg/controller/podautoscaler (master, with KEP-4951 configurable tolerances):
 * - replica_calculator_test.go: TestReplicaCalcResourceScale, TestReplicaCalcResourceTolerance,
 *   TestReplicaCalcResourceMissingMetrics, TestReplicaCalcPodMetric;
 * - horizontal_test.go: TestScalingWithRules, TestStoreScaleEvents (getReplicasChangePerPeriod),
 *   TestNormalizeDesiredReplicasWithBehavior, TestScaleUpOneMetricEmpty, TestNoScaleDownOneMetricEmpty.
 *
 * Mapping: a pod's CPU utilization is a replica's cpuPercent; an unready pod is an unhealthy replica (its
 * reading is not passed); a pod without metrics is a ready replica without a sample ("missing").
 * Resource (cpu) rows fall back to max(100, target)% for missing pods on a scale-down, pod-metric rows to the
 * target. Cases that cannot be expressed here are left out: pods beyond currentReplicas (superfluous metrics,
 * rolling-update surge pods), container-scoped metrics, CPU-initialization ("hot CPU") timing, object and
 * external metrics, int32 overflow.
 */
import { describe, expect, it } from "vitest";
import {
  type Behavior,
  decide,
  type HpaScalingPolicy,
  hpaReplicasForMetric,
  type Limit,
  limitRate,
  parsePolicy,
  type RecommendationRecord,
  replicasChangedInPeriod,
  type ScaleEventRecord,
  type ScalingPolicy,
  stabilize,
} from "../src/index.ts";
import { cpuSamples, NOW, sample, seconds, state } from "./fixtures.ts";

const DEFAULT_TOLERANCE = { scaleUp: 0.1, scaleDown: 0.1 };

interface CalcRow {
  upstream: string;
  name: string;
  current: number;
  /** Readings of ready pods that have metrics. */
  ready: number[];
  missing?: number;
  unready?: number;
  target: number;
  utilization: boolean;
  tolerance?: { scaleUp: number; scaleDown: number };
  expected: number;
}

const calcRows: CalcRow[] = [
  // TestReplicaCalcResourceScale
  {
    upstream: "TestReplicaCalcResourceScale",
    name: "scale up",
    current: 3,
    ready: [30, 50, 70],
    target: 30,
    utilization: true,
    expected: 5,
  },
  {
    upstream: "TestReplicaCalcResourceScale",
    name: "scale up: unready pod scales less",
    current: 3,
    ready: [50, 70],
    unready: 1,
    target: 30,
    utilization: true,
    expected: 4,
  },
  {
    upstream: "TestReplicaCalcResourceScale",
    name: "no scale: unready pods ignored",
    current: 3,
    ready: [40],
    unready: 2,
    target: 30,
    utilization: true,
    expected: 3,
  },
  {
    upstream: "TestReplicaCalcResourceScale",
    name: "scale up: failed pods ignored",
    current: 2,
    ready: [50, 70],
    target: 30,
    utilization: true,
    expected: 4,
  },
  {
    upstream: "TestReplicaCalcResourceScale",
    name: "scale down",
    current: 5,
    ready: [10, 30, 50, 25, 25],
    target: 50,
    utilization: true,
    expected: 3,
  },
  {
    upstream: "TestReplicaCalcResourceScale",
    name: "scale down: exclude unready pods",
    current: 5,
    ready: [10, 30, 50],
    unready: 2,
    target: 50,
    utilization: true,
    expected: 2,
  },
  {
    upstream: "TestReplicaCalcResourceScale",
    name: "scale down: exclude unscheduled pods",
    current: 5,
    ready: [10],
    unready: 4,
    target: 50,
    utilization: true,
    expected: 1,
  },
  // TestReplicaCalcResourceTolerance (requests differ per pod: each pod reads the request-weighted utilization)
  {
    upstream: "TestReplicaCalcResourceTolerance",
    name: "within default tolerance",
    current: 3,
    ready: [102, 102, 102],
    target: 100,
    utilization: true,
    expected: 3,
  },
  {
    upstream: "TestReplicaCalcResourceTolerance",
    name: "outside 0% tolerance",
    current: 3,
    ready: [101, 101, 101],
    target: 100,
    utilization: true,
    tolerance: { scaleUp: 0, scaleDown: 0 },
    expected: 4,
  },
  {
    upstream: "TestReplicaCalcResourceTolerance",
    name: "within 200% scale-up tolerance",
    current: 3,
    ready: [190, 190, 190],
    target: 100,
    utilization: true,
    tolerance: { scaleUp: 2, scaleDown: 0.1 },
    expected: 3,
  },
  {
    upstream: "TestReplicaCalcResourceTolerance",
    name: "outside 8% scale-up tolerance (superfluous scale-down tolerance)",
    current: 3,
    ready: [109, 109, 109],
    target: 100,
    utilization: true,
    tolerance: { scaleUp: 0.08, scaleDown: 2 },
    expected: 4,
  },
  {
    upstream: "TestReplicaCalcResourceTolerance",
    name: "within 36% scale-down tolerance",
    current: 3,
    ready: [65, 65, 65],
    target: 100,
    utilization: true,
    tolerance: { scaleUp: 0.1, scaleDown: 0.36 },
    expected: 3,
  },
  {
    upstream: "TestReplicaCalcResourceTolerance",
    name: "outside 34% scale-down tolerance",
    current: 3,
    ready: [65, 65, 65],
    target: 100,
    utilization: true,
    tolerance: { scaleUp: 0.1, scaleDown: 0.34 },
    expected: 2,
  },
  // TestReplicaCalcResourceMissingMetrics
  {
    upstream: "TestReplicaCalcResourceMissingMetrics",
    name: "some pods missing metrics scales down",
    current: 4,
    ready: [40, 9.5],
    missing: 2,
    target: 100,
    utilization: true,
    expected: 3,
  },
  {
    upstream: "TestReplicaCalcResourceMissingMetrics",
    name: "no change: metric equal to target",
    current: 2,
    ready: [100],
    missing: 1,
    target: 100,
    utilization: true,
    expected: 2,
  },
  {
    upstream: "TestReplicaCalcResourceMissingMetrics",
    name: "no change: metric above target",
    current: 2,
    ready: [190],
    missing: 1,
    target: 100,
    utilization: true,
    expected: 2,
  },
  {
    upstream: "TestReplicaCalcResourceMissingMetrics",
    name: "no change: metric below target",
    current: 2,
    ready: [60],
    missing: 1,
    target: 100,
    utilization: true,
    expected: 2,
  },
  {
    upstream: "TestReplicaCalcResourceMissingMetrics",
    name: "no change: unready pod metric missing",
    current: 3,
    ready: [45],
    missing: 1,
    unready: 1,
    target: 50,
    utilization: true,
    expected: 3,
  },
  {
    upstream: "TestReplicaCalcResourceMissingMetrics",
    name: "scale up: unready pod metric missing",
    current: 3,
    ready: [200],
    missing: 1,
    unready: 1,
    target: 50,
    utilization: true,
    expected: 4,
  },
  {
    upstream: "TestReplicaCalcResourceMissingMetrics",
    name: "scale down: unready pod metric missing",
    current: 4,
    ready: [10, 10],
    missing: 1,
    unready: 1,
    target: 50,
    utilization: true,
    expected: 3,
  },
  // requests 1, 2 (ready) and 2 (missing): 200m of 3000m = 6.67%; the missing pod falls back to max(100, 300)%.
  {
    upstream: "TestReplicaCalcResourceMissingMetrics",
    name: "scale down: target over 100",
    current: 4,
    ready: [200 / 30, 200 / 30],
    missing: 1,
    unready: 1,
    target: 300,
    utilization: true,
    expected: 2,
  },
  // TestReplicaCalcPodMetric (qps in whole units; the fixtures use milli-units)
  {
    upstream: "TestReplicaCalcPodMetric",
    name: "scale up",
    current: 3,
    ready: [20, 10, 30],
    target: 15,
    utilization: false,
    expected: 4,
  },
  {
    upstream: "TestReplicaCalcPodMetric",
    name: "scale down",
    current: 5,
    ready: [12, 12, 12, 12, 12],
    target: 20,
    utilization: false,
    expected: 3,
  },
  {
    upstream: "TestReplicaCalcPodMetric",
    name: "within default tolerance",
    current: 3,
    ready: [20, 21, 21],
    target: 20,
    utilization: false,
    expected: 3,
  },
  {
    upstream: "TestReplicaCalcPodMetric",
    name: "outside configurable 1% tolerance",
    current: 3,
    ready: [20, 21, 21],
    target: 20,
    utilization: false,
    tolerance: { scaleUp: 0.01, scaleDown: 0.1 },
    expected: 4,
  },
  {
    upstream: "TestReplicaCalcPodMetric",
    name: "no change: missing metrics",
    current: 5,
    ready: [20, 19, 21],
    missing: 2,
    target: 20,
    utilization: false,
    expected: 5,
  },
];

describe("HPA replica calculator (replica_calculator_test.go)", () => {
  it.each(calcRows)("$upstream: $name → $expected", (row) => {
    const value = row.ready.reduce((a, b) => a + b, 0) / row.ready.length;
    const result = hpaReplicasForMetric({
      currentReplicas: row.current,
      readyWithMetrics: row.ready.length,
      missingReplicas: row.missing ?? 0,
      unreadyReplicas: row.unready ?? 0,
      value,
      target: row.target,
      missingValueOnScaleDown: row.utilization ? Math.max(100, row.target) : row.target,
      tolerance: row.tolerance ?? DEFAULT_TOLERANCE,
    });
    expect(result.replicas).toBe(row.expected);
  });
});

describe("HPA replica calculator through decide() (targetTracking)", () => {
  // The other metrics read 0 so cpu decides; rows whose cpu exceeds 100% stay at function level above.
  const cpuPolicy = (targetCpuPercent: number) =>
    parsePolicy({ strategy: "targetTracking", targetCpuPercent, maxReplicas: 100 });
  const rows = calcRows.filter(
    (r) => r.utilization && r.target <= 100 && r.ready.every((v) => v <= 100) && !r.tolerance,
  );

  it.each(rows)("$upstream: $name → $expected", (row) => {
    const current = row.current;
    const samples = cpuSamples(...row.ready);
    const decision = decide(
      cpuPolicy(row.target),
      state({ currentReplicas: current, unhealthyReplicas: row.unready ?? 0, samples }),
      NOW,
    );
    expect(decision.recommendedReplicas).toBe(row.expected);
    expect(decision.desiredReplicas).toBe(row.expected);
  });
});

/** horizontal_test.go generateEventsUniformDistribution: events spread evenly over the last `period` seconds. */
function uniformEvents(changes: number[], periodSeconds: number, direction: 1 | -1): ScaleEventRecord[] {
  const segment = periodSeconds / changes.length;
  return changes.map((change, i) => {
    const ago = periodSeconds - segment * (i + 1) + segment / 2;
    return { at: NOW - seconds(ago), fromReplicas: 100, toReplicas: 100 + direction * change };
  });
}

/** horizontal_test.go generateScalingRules. */
function rules(pods: number, podsPeriod: number, percent: number, percentPeriod: number, window: number) {
  const policies: HpaScalingPolicy[] = [];
  if (pods !== 0) policies.push({ type: "Pods", value: pods, periodSeconds: podsPeriod });
  if (percent !== 0) policies.push({ type: "Percent", value: percent, periodSeconds: percentPeriod });
  return { stabilizationWindowSeconds: window, selectPolicy: "Max" as const, policies };
}

type Rules = ReturnType<typeof rules>;
interface RateRow {
  name: string;
  current: number;
  desired: number;
  min: number;
  max: number;
  up?: Rules;
  down?: Rules;
  upEvents?: ScaleEventRecord[];
  downEvents?: ScaleEventRecord[];
  expected: number;
  condition: "DesiredWithinRange" | "ScaleUpLimit" | "ScaleDownLimit" | "TooManyReplicas" | "TooFewReplicas";
}

const rateRows: RateRow[] = [
  {
    name: "prenormalized desired replicas within range",
    current: 5,
    desired: 7,
    min: 3,
    max: 8,
    expected: 7,
    condition: "DesiredWithinRange",
  },
  {
    name: "prenormalized desired replicas < minReplicas",
    current: 3,
    desired: 1,
    min: 2,
    max: 8,
    expected: 2,
    condition: "TooFewReplicas",
  },
  {
    name: "prenormalized desired replicas within range when minReplicas is 0",
    current: 1,
    desired: 0,
    min: 0,
    max: 10,
    expected: 0,
    condition: "DesiredWithinRange",
  },
  {
    name: "maxReplicas is the limit because maxReplicas < scaleUpLimit",
    current: 20,
    desired: 1000,
    min: 1,
    max: 10,
    expected: 10,
    condition: "TooManyReplicas",
  },
  {
    name: "desired replica count is more than the maximum replica count",
    current: 100,
    desired: 1000,
    min: 100,
    max: 150,
    expected: 150,
    condition: "TooManyReplicas",
  },
  {
    name: "scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies",
    current: 3,
    desired: 1000,
    min: 1,
    max: 2000,
    up: rules(0, 0, 1, 60, 0),
    expected: 4,
    condition: "ScaleUpLimit",
  },
  {
    name: "scaleUp with default behavior",
    current: 10,
    desired: 50,
    min: 1,
    max: 1000,
    expected: 20,
    condition: "ScaleUpLimit",
  },
  {
    name: "scaleUp with pods policy larger than percent policy",
    current: 10,
    desired: 500,
    min: 1,
    max: 1000,
    up: rules(100, 60, 100, 60, 0),
    expected: 110,
    condition: "ScaleUpLimit",
  },
  {
    name: "scaleUp with percent policy larger than pods policy",
    current: 10,
    desired: 500,
    min: 1,
    max: 1000,
    up: rules(2, 60, 100, 60, 0),
    expected: 20,
    condition: "ScaleUpLimit",
  },
  {
    name: "scaleUp with spec MaxReplicas limitation with large pod policy",
    current: 10,
    desired: 50,
    min: 1,
    max: 1000,
    up: rules(100, 60, 0, 0, 0),
    expected: 50,
    condition: "DesiredWithinRange",
  },
  {
    name: "scaleUp with spec MaxReplicas limitation with large percent policy",
    current: 10,
    desired: 50,
    min: 1,
    max: 1000,
    up: rules(10000, 60, 0, 0, 0),
    expected: 50,
    condition: "DesiredWithinRange",
  },
  {
    name: "scaleUp with pod policy limitation",
    current: 10,
    desired: 50,
    min: 1,
    max: 1000,
    up: rules(30, 60, 0, 0, 0),
    expected: 40,
    condition: "ScaleUpLimit",
  },
  {
    name: "scaleUp with percent policy limitation",
    current: 10,
    desired: 50,
    min: 1,
    max: 1000,
    up: rules(0, 0, 200, 60, 0),
    expected: 30,
    condition: "ScaleUpLimit",
  },
  {
    name: "scaleDown with percent policy larger than pod policy",
    current: 100,
    desired: 2,
    min: 1,
    max: 1000,
    down: rules(20, 60, 1, 60, 300),
    expected: 80,
    condition: "ScaleDownLimit",
  },
  {
    name: "scaleDown with pod policy larger than percent policy",
    current: 100,
    desired: 2,
    min: 1,
    max: 1000,
    down: rules(2, 60, 1, 60, 300),
    expected: 98,
    condition: "ScaleDownLimit",
  },
  {
    name: "scaleDown with spec MinReplicas limitation with large pod policy",
    current: 10,
    desired: 0,
    min: 1,
    max: 1000,
    down: rules(100, 60, 0, 0, 300),
    expected: 1,
    condition: "TooFewReplicas",
  },
  {
    name: "scaleDown with spec MinReplicas limitation with large percent policy",
    current: 10,
    desired: 2,
    min: 5,
    max: 1000,
    down: rules(0, 0, 100, 60, 300),
    expected: 5,
    condition: "TooFewReplicas",
  },
  {
    name: "scaleDown with pod policy limitation",
    current: 10,
    desired: 2,
    min: 1,
    max: 1000,
    down: rules(5, 60, 0, 0, 300),
    expected: 5,
    condition: "ScaleDownLimit",
  },
  {
    name: "scaleDown with percent policy limitation",
    current: 10,
    desired: 5,
    min: 1,
    max: 1000,
    down: rules(0, 0, 50, 60, 300),
    expected: 5,
    condition: "DesiredWithinRange",
  },
  {
    name: "scaleUp with spec MaxReplicas limitation with large pod policy and events",
    current: 100,
    desired: 500,
    min: 1,
    max: 200,
    up: rules(300, 60, 0, 0, 0),
    upEvents: uniformEvents([1, 5, 9], 120, 1),
    expected: 200,
    condition: "TooManyReplicas",
  },
  {
    name: "scaleUp with spec MaxReplicas limitation with large percent policy and events",
    current: 100,
    desired: 500,
    min: 1,
    max: 200,
    up: rules(0, 0, 10000, 60, 0),
    upEvents: uniformEvents([1, 5, 9], 120, 1),
    expected: 200,
    condition: "TooManyReplicas",
  },
  {
    name: "scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot of recent scale up events",
    current: 100,
    desired: 500,
    min: 1,
    max: 1000,
    up: rules(5, 120, 0, 0, 0),
    upEvents: uniformEvents([1, 5, 9], 120, 1),
    expected: 100,
    condition: "ScaleUpLimit",
  },
  {
    name: "scaleUp with pod policy and previous scale up events",
    current: 100,
    desired: 500,
    min: 1,
    max: 1000,
    up: rules(150, 120, 0, 0, 0),
    upEvents: uniformEvents([1, 5, 9], 120, 1),
    expected: 235,
    condition: "ScaleUpLimit",
  },
  {
    name: "scaleUp with percent policy and previous scale up events",
    current: 100,
    desired: 500,
    min: 1,
    max: 1000,
    up: rules(0, 0, 200, 120, 0),
    upEvents: uniformEvents([1, 5, 9], 120, 1),
    expected: 255,
    condition: "ScaleUpLimit",
  },
  {
    name: "scaleUp with percent policy and previous scale up and down events",
    current: 6,
    desired: 24,
    min: 1,
    max: 1000,
    up: rules(0, 0, 300, 300, 0),
    upEvents: uniformEvents([4], 120, 1),
    downEvents: uniformEvents([2], 120, -1),
    expected: 16,
    condition: "ScaleUpLimit",
  },
  {
    name: "scaleDown with default policy and previous events",
    current: 10,
    desired: 5,
    min: 1,
    max: 1000,
    downEvents: uniformEvents([1, 5, 9], 120, -1),
    expected: 5,
    condition: "DesiredWithinRange",
  },
  {
    name: "scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events",
    current: 100,
    desired: 0,
    min: 1,
    max: 1000,
    down: rules(115, 120, 0, 0, 300),
    downEvents: uniformEvents([1, 5, 9], 120, -1),
    expected: 1,
    condition: "TooFewReplicas",
  },
  {
    name: "scaleDown with spec MinReplicas limitation with large pod policy and previous events",
    current: 100,
    desired: 0,
    min: 5,
    max: 1000,
    down: rules(130, 120, 0, 0, 300),
    downEvents: uniformEvents([1, 5, 9], 120, -1),
    expected: 5,
    condition: "TooFewReplicas",
  },
  {
    name: "scaleDown with spec MinReplicas limitation with large percent policy and previous events",
    current: 100,
    desired: 2,
    min: 5,
    max: 1000,
    down: rules(0, 0, 100, 120, 300),
    downEvents: uniformEvents([1, 5, 9], 120, -1),
    expected: 5,
    condition: "TooFewReplicas",
  },
  {
    name: "scaleDown with pod policy limitation and previous events",
    current: 100,
    desired: 2,
    min: 1,
    max: 1000,
    down: rules(5, 120, 0, 0, 300),
    downEvents: uniformEvents([1, 5, 9], 120, -1),
    expected: 100,
    condition: "ScaleDownLimit",
  },
  {
    name: "scaleDown with percent policy limitation and previous events",
    current: 100,
    desired: 0,
    min: 1,
    max: 1000,
    down: rules(0, 0, 50, 120, 300),
    downEvents: uniformEvents([2, 4, 6], 120, -1),
    expected: 56,
    condition: "ScaleDownLimit",
  },
  {
    name: "scaleDown with percent policy and previous scale up and down events",
    current: 10,
    desired: 1,
    min: 1,
    max: 1000,
    down: rules(0, 0, 50, 180, 0),
    upEvents: uniformEvents([2], 120, 1),
    downEvents: uniformEvents([4], 120, -1),
    expected: 6,
    condition: "ScaleDownLimit",
  },
  {
    name: "scaleDown with previous events preventing further scale down",
    current: 100,
    desired: 0,
    min: 1,
    max: 1000,
    down: rules(0, 0, 10, 120, 300),
    downEvents: uniformEvents([10, 10, 10], 120, -1),
    expected: 100,
    condition: "ScaleDownLimit",
  },
  {
    name: "scaleDown with with previous events still allowing more scale down",
    current: 10,
    desired: 5,
    min: 1,
    max: 1000,
    down: rules(0, 0, 1000, 120, 300),
    downEvents: uniformEvents([10, 10, 10], 120, -1),
    expected: 5,
    condition: "DesiredWithinRange",
  },
  {
    name: "check 'outdated' flag for events for one behavior for up",
    current: 100,
    desired: 200,
    min: 1,
    max: 1000,
    up: rules(1000, 60, 0, 0, 0),
    upEvents: uniformEvents([8, 12, 9, 11], 120, 1),
    expected: 200,
    condition: "DesiredWithinRange",
  },
  {
    name: "check that events were not marked 'outdated' for two different policies in the behavior for up",
    current: 100,
    desired: 200,
    min: 1,
    max: 1000,
    up: rules(1000, 120, 100, 60, 0),
    upEvents: uniformEvents([8, 12, 9, 11], 120, 1),
    expected: 200,
    condition: "DesiredWithinRange",
  },
  {
    name: "check that events were marked 'outdated' for two different policies in the behavior for up",
    current: 100,
    desired: 200,
    min: 1,
    max: 1000,
    up: rules(1000, 30, 100, 60, 0),
    upEvents: uniformEvents([8, 12, 9, 11], 120, 1),
    expected: 200,
    condition: "DesiredWithinRange",
  },
  {
    name: "check 'outdated' flag for events for one behavior for down",
    current: 100,
    desired: 5,
    min: 1,
    max: 1000,
    down: rules(1000, 60, 0, 0, 300),
    downEvents: uniformEvents([8, 12, 9, 11], 120, -1),
    expected: 5,
    condition: "DesiredWithinRange",
  },
  {
    name: "check that events were not marked 'outdated' for two different policies in the behavior for down",
    current: 100,
    desired: 5,
    min: 1,
    max: 1000,
    down: rules(1000, 120, 100, 60, 300),
    downEvents: uniformEvents([8, 12, 9, 11], 120, -1),
    expected: 5,
    condition: "DesiredWithinRange",
  },
  {
    name: "check that events were marked 'outdated' for two different policies in the behavior for down",
    current: 100,
    desired: 5,
    min: 1,
    max: 1000,
    down: rules(1000, 30, 100, 60, 300),
    downEvents: uniformEvents([8, 12, 9, 11], 120, -1),
    expected: 5,
    condition: "DesiredWithinRange",
  },
];

const CONDITION_LIMIT: Record<RateRow["condition"], Limit["kind"] | undefined> = {
  DesiredWithinRange: undefined,
  ScaleUpLimit: "ratePolicy",
  ScaleDownLimit: "ratePolicy",
  TooManyReplicas: "maxReplicas",
  TooFewReplicas: "minReplicas",
};

describe("HPA rate policies (horizontal_test.go TestScalingWithRules)", () => {
  it.each(rateRows)("$name → $expected ($condition)", (row) => {
    // Unset rules fall back to HPA's defaults, as GenerateHPAScaleUpRules/GenerateHPAScaleDownRules do.
    const behavior: Behavior = parsePolicy({
      behavior: { ...(row.up ? { scaleUp: row.up } : {}), ...(row.down ? { scaleDown: row.down } : {}) },
    }).behavior;
    const events = [...(row.upEvents ?? []), ...(row.downEvents ?? [])];
    // convertDesiredReplicasWithBehaviorRate: the rate bound, then min/max; the last limit is HPA's condition.
    const limits: Limit[] = [];
    const rated = limitRate(row.current, row.desired, events, behavior, NOW);
    if (rated.limit) limits.push(rated.limit);
    let desired = rated.desired;
    if (desired > row.max) {
      limits.push({ kind: "maxReplicas", value: row.max, from: desired, to: row.max });
      desired = row.max;
    } else if (desired < row.min) {
      limits.push({ kind: "minReplicas", value: row.min, from: desired, to: row.min });
      desired = row.min;
    }
    expect(desired).toBe(row.expected);
    expect(limits.at(-1)?.kind).toBe(CONDITION_LIMIT[row.condition]);
  });
});

describe("HPA scale events per period (horizontal_test.go TestStoreScaleEvents)", () => {
  const rows: { name: string; events: [number, number][]; expected: number }[] = [
    { name: "empty entries with default behavior", events: [], expected: 0 },
    { name: "one outdated entry to be replaced with behavior", events: [[7, 61]], expected: 0 },
    { name: "one actual entry to be not touched with behavior", events: [[7, 58]], expected: 7 },
    {
      name: "two entries, one of them to be replaced",
      events: [
        [7, 61],
        [6, 59],
      ],
      expected: 6,
    },
    {
      name: "replace one entry, use policies with different periods",
      events: [
        [8, 29],
        [6, 59],
        [7, 61],
        [9, 61],
      ],
      expected: 14,
    },
    {
      name: "two entries, both actual",
      events: [
        [7, 58],
        [6, 59],
      ],
      expected: 13,
    },
  ];
  it.each(rows)("$name → $expected replicas in the last 60 s", ({ events, expected }) => {
    const up = events.map(([change, ago]) => ({
      at: NOW - seconds(ago),
      fromReplicas: 10,
      toReplicas: 10 + change,
    }));
    const down = events.map(([change, ago]) => ({
      at: NOW - seconds(ago),
      fromReplicas: 10,
      toReplicas: 10 - change,
    }));
    expect(replicasChangedInPeriod(up, 60, 1, NOW)).toBe(expected);
    expect(replicasChangedInPeriod(down, 60, -1, NOW)).toBe(expected);
    // Each direction ignores the other's events.
    expect(replicasChangedInPeriod(up, 60, -1, NOW)).toBe(0);
  });
});

describe("HPA stabilization windows (horizontal_test.go TestNormalizeDesiredReplicasWithBehavior)", () => {
  const minutes = (n: number) => seconds(60 * n);
  const recs = (...pairs: [number, number][]): RecommendationRecord[] =>
    pairs.map(([replicas, agoMinutes]) => ({ replicas, at: NOW - minutes(agoMinutes) }));
  const rows = [
    {
      name: "empty recommendations for scaling down",
      recs: recs(),
      current: 100,
      desired: 5,
      up: 0,
      down: 0,
      expected: 5,
    },
    {
      name: "simple scale down stabilization",
      recs: recs([4, 2], [5, 1]),
      current: 100,
      desired: 3,
      up: 0,
      down: 180,
      expected: 5,
    },
    {
      name: "simple scale up stabilization",
      recs: recs([4, 2], [5, 1]),
      current: 1,
      desired: 7,
      up: 300,
      down: 0,
      expected: 4,
    },
    {
      name: "no scale down stabilization",
      recs: recs([1, 2], [2, 1]),
      current: 100,
      desired: 3,
      up: 300,
      down: 0,
      expected: 3,
    },
    {
      name: "no scale up stabilization",
      recs: recs([4, 2], [5, 1]),
      current: 1,
      desired: 3,
      up: 0,
      down: 300,
      expected: 3,
    },
    {
      name: "no scale down stabilization, reuse recommendation element",
      recs: recs([10, 10], [9, 9]),
      current: 100,
      desired: 3,
      up: 0,
      down: 0,
      expected: 3,
    },
    {
      name: "no scale up stabilization, reuse recommendation element",
      recs: recs([10, 10], [9, 9]),
      current: 1,
      desired: 100,
      up: 0,
      down: 0,
      expected: 100,
    },
    {
      name: "scale down stabilization, reuse one of obsolete recommendation element",
      recs: recs([10, 10], [4, 1], [5, 2], [9, 9]),
      current: 100,
      desired: 3,
      up: 0,
      down: 180,
      expected: 5,
    },
    {
      name: "scale up stabilization, reuse one of obsolete recommendation element",
      recs: recs([10, 100], [6, 1], [5, 2], [9, 3]),
      current: 1,
      desired: 100,
      up: 300,
      down: 0,
      expected: 5,
    },
    {
      name: "scale up and down stabilization, do not scale up when prenormalized rec goes down",
      recs: recs([2, 100], [3, 3]),
      current: 2,
      desired: 1,
      up: 300,
      down: 300,
      expected: 2,
    },
    {
      name: "scale up and down stabilization, do not scale down when prenormalized rec goes up",
      recs: recs([2, 100], [1, 3]),
      current: 2,
      desired: 3,
      up: 300,
      down: 300,
      expected: 2,
    },
  ];
  it.each(rows)("$name → $expected", (row) => {
    const behavior = parsePolicy({
      behavior: {
        scaleUp: { stabilizationWindowSeconds: row.up },
        scaleDown: { stabilizationWindowSeconds: row.down },
      },
    }).behavior;
    expect(stabilize(row.current, row.desired, row.recs, behavior, NOW)).toBe(row.expected);
  });
});

describe("HPA with a metric that has no readings (horizontal_test.go)", () => {
  const policy = (targetCpuPercent: number, minReplicas: number): ScalingPolicy =>
    parsePolicy({
      strategy: "targetTracking",
      targetCpuPercent,
      minReplicas,
      maxReplicas: 6,
      customMetricTargets: { qps: 100 },
    });

  it("TestScaleUpOneMetricEmpty: the other metrics still scale up (3 → 4)", () => {
    const decision = decide(
      policy(30, 2),
      state({ currentReplicas: 3, samples: cpuSamples(30, 40, 50) }),
      NOW,
    );
    expect(decision.desiredReplicas).toBe(4);
  });

  it("TestNoScaleDownOneMetricEmpty: never scales down while a metric is missing (stays at 5)", () => {
    const decision = decide(
      policy(50, 2),
      state({ currentReplicas: 5, samples: cpuSamples(10, 30, 50, 25, 25) }),
      NOW,
    );
    expect(decision.desiredReplicas).toBe(5);
    expect(decision.limits).toContainEqual({
      kind: "noMetrics",
      liveSamples: 5,
      maxAgeSeconds: 60,
      metric: "custom.qps",
    });
    // With the metric reported (and idle) the same fleet scales down to 3.
    const reported = cpuSamples(10, 30, 50, 25, 25).map((s) => ({ ...s, custom: { qps: 0 } }));
    expect(decide(policy(50, 2), state({ currentReplicas: 5, samples: reported }), NOW).desiredReplicas).toBe(
      3,
    );
  });
});

describe("HPA behavior end to end (decide with targetTracking)", () => {
  it("caps a scale-up at the default behavior's larger policy, 100% per 15 s", () => {
    const policy = parsePolicy({ strategy: "targetTracking", targetCpuPercent: 20, maxReplicas: 50 });
    const wide = decide(
      policy,
      state({ currentReplicas: 10, samples: [sample({ cpuPercent: 90, memoryPercent: 0, requestRate: 0 })] }),
      NOW,
    );
    // 10 replicas at 4.5× → 45; bound Max(10 + 4, 20) = 20.
    expect(wide.recommendedReplicas).toBe(45);
    expect(wide.desiredReplicas).toBe(20);
    expect(wide.explanation).toBe(
      "cpu 90% vs target 20% → 45 replicas; capped at 20 by scaleUp policy Percent 100 per 15s; scale up 10 → 20",
    );
  });
});
