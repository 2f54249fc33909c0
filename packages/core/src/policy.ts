import { z } from "zod";
import { metricNameSchema } from "./metrics.ts";
import { cronError, isKnownTimeZone } from "./schedule.ts";
import { PG_INTEGER_MAX, storableInteger, storableText } from "./storable.ts";

/** Strategy names. Adding a strategy: a file in `strategies/`, its name here, its entry in the registry. */
export const STRATEGY_NAMES = ["threshold", "targetTracking", "step", "predictive"] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** How often the control loop reconciles every proxy by default; fallback counts missed intervals of this length. */
export const DEFAULT_RECONCILE_SECONDS = 10;

/** `forecastOnly` (AWS ForecastOnly) records forecasts and would-be decisions without acting, like dryRun. */
export const POLICY_MODES = ["auto", "dryRun", "forecastOnly", "off"] as const;
export type PolicyMode = (typeof POLICY_MODES)[number];

const percent = z
  .number()
  .gt(0, { message: "must be a percent in (0, 100]: greater than 0" })
  .lte(100, { message: "must be a percent in (0, 100]: at most 100" });
const seconds = z
  .number()
  .int({ message: "must be a whole number of seconds" })
  .min(0, { message: "must not be negative" })
  .max(PG_INTEGER_MAX, { message: `must be at most ${PG_INTEGER_MAX} (a PostgreSQL integer)` });
const positive = z.number().gt(0, { message: "must be greater than 0" });

/**
 * Upper bounds of the policy's durations, in seconds (docs/engine.md, "Bounds"). A day for a cooldown: past it a
 * proxy effectively never scales again in that direction (mode `off` says so plainly). A day for
 * metricsMaxAgeSeconds: a sample a day old says nothing about the load now, and the instances of a proxy stay
 * live for twice it. HPA's own limits for stabilization windows (an hour) and rate periods (30 minutes).
 */
export const POLICY_DURATION_LIMITS = {
  cooldownSeconds: 86_400,
  metricsMaxAgeSeconds: 86_400,
  stabilizationWindowSeconds: 3_600,
  periodSeconds: 1_800,
  scaleToZeroGracePeriodSeconds: 3_600,
} as const;
/** The furthest back any decision looks (the longest of the bounded durations above). */
export const MAX_POLICY_HISTORY_SECONDS = Math.max(...Object.values(POLICY_DURATION_LIMITS));

const cooldown = seconds.max(POLICY_DURATION_LIMITS.cooldownSeconds, {
  message: `must be at most ${POLICY_DURATION_LIMITS.cooldownSeconds} (a day)`,
});

export const HPA_POLICY_TYPES = ["Pods", "Percent"] as const;
/** HPA `HPAScalingPolicy`: at most `value` Pods (or Percent of the replicas at the period's start) per period. */
export const hpaScalingPolicySchema = z.strictObject({
  type: z.enum(HPA_POLICY_TYPES),
  value: storableInteger(0).gt(0, { message: "must be greater than 0" }),
  periodSeconds: z
    .number()
    .int()
    .gt(0, { message: "must be greater than 0" })
    .lte(POLICY_DURATION_LIMITS.periodSeconds, { message: "must be at most 1800 (HPA's limit)" }),
});
export type HpaScalingPolicy = z.infer<typeof hpaScalingPolicySchema>;

export const SELECT_POLICIES = ["Max", "Min", "Disabled"] as const;

function scalingRulesSchema(defaults: { stabilizationWindowSeconds: number; policies: HpaScalingPolicy[] }) {
  return z.strictObject({
    stabilizationWindowSeconds: seconds
      .max(POLICY_DURATION_LIMITS.stabilizationWindowSeconds, {
        message: "must be at most 3600 (HPA's limit)",
      })
      .default(defaults.stabilizationWindowSeconds),
    selectPolicy: z.enum(SELECT_POLICIES).default("Max"),
    policies: z.array(hpaScalingPolicySchema).min(1).default(defaults.policies),
    /** KEP-4951 configurable tolerance: no upper bound (a scale-down tolerance ≥ 1 never scales down). */
    tolerance: z.number().min(0, { message: "must not be negative" }).default(0.1),
  });
}

/** HPA's defaults (k8s.io/kubernetes pkg/apis/autoscaling/v2/defaults.go). */
export const HPA_DEFAULT_BEHAVIOR = {
  scaleUp: {
    stabilizationWindowSeconds: 0,
    selectPolicy: "Max",
    policies: [
      { type: "Pods", value: 4, periodSeconds: 15 },
      { type: "Percent", value: 100, periodSeconds: 15 },
    ],
    tolerance: 0.1,
  },
  scaleDown: {
    stabilizationWindowSeconds: 300,
    selectPolicy: "Max",
    policies: [{ type: "Percent", value: 100, periodSeconds: 15 }],
    tolerance: 0.1,
  },
} as const satisfies { scaleUp: ScalingRules; scaleDown: ScalingRules };

export const scaleUpRulesSchema = scalingRulesSchema({
  stabilizationWindowSeconds: HPA_DEFAULT_BEHAVIOR.scaleUp.stabilizationWindowSeconds,
  policies: [...HPA_DEFAULT_BEHAVIOR.scaleUp.policies],
});
export const scaleDownRulesSchema = scalingRulesSchema({
  stabilizationWindowSeconds: HPA_DEFAULT_BEHAVIOR.scaleDown.stabilizationWindowSeconds,
  policies: [...HPA_DEFAULT_BEHAVIOR.scaleDown.policies],
});
export type ScalingRules = z.output<typeof scaleUpRulesSchema>;

/** HPA's `behavior`, plus a per-direction `tolerance`. Applied after every strategy. */
export const behaviorSchema = z.strictObject({
  scaleUp: scaleUpRulesSchema.prefault({}),
  scaleDown: scaleDownRulesSchema.prefault({}),
});
export type Behavior = z.output<typeof behaviorSchema>;

/**
 * AWS step adjustment. Bounds are relative to the alarm threshold, as in AWS:
 * the adjustment applies when lower ≤ (value − threshold) < upper. A missing bound is open.
 */
export const stepAdjustmentSchema = z.strictObject({
  metricIntervalLowerBound: z.number().optional(),
  metricIntervalUpperBound: z.number().optional(),
  scalingAdjustment: storableInteger(-PG_INTEGER_MAX),
});
export type StepAdjustment = z.infer<typeof stepAdjustmentSchema>;

export const STEP_ADJUSTMENT_TYPES = [
  "ChangeInCapacity",
  "PercentChangeInCapacity",
  "ExactCapacity",
] as const;

const stepAlarmSchema = z.strictObject({
  threshold: z.number(),
  stepAdjustments: z.array(stepAdjustmentSchema).min(1),
});

/**
 * AWS step scaling. `metric` is `loadScore`, a built-in metric, or `custom.<name>`.
 * The scale-out alarm fires when the metric is above its threshold, the scale-in alarm when below.
 */
/** The predictive strategy's settings (docs/engine.md, "Predictive"). */
export const predictiveSchema = z.strictObject({
  /** How far ahead the forecast is read: a new replica's provisioning time, so it serves when the load comes. */
  warmupSeconds: seconds.max(3_600, { message: "must be at most 3600 (an hour)" }).default(300),
  /**
   * Headroom: act on this quantile of per-minute demand, i.e. the forecast plus that quantile of the model's last
   * day of per-minute errors (each minute's demand against its bucket's one-step forecast): demand swings from
   * minute to minute around any forecast of its mean. Absent (the default): none; docs/backtest.md measures what
   * 0.6, 0.7 and 0.8 buy and cost in replica-hours.
   */
  headroomQuantile: z
    .number({ message: "must be a quantile, a number from 0.5 to 0.99" })
    .min(0.5, { message: "must be at least 0.5 (the median error): lower would act under the forecast" })
    .max(0.99, { message: "must be at most 0.99 (the last day has 1440 minutes of errors)" })
    .optional(),
});
export type PredictiveSettings = z.output<typeof predictiveSchema>;

export const stepScalingSchema = z.strictObject({
  metric: storableText().min(1).max(200).default("loadScore"),
  adjustmentType: z.enum(STEP_ADJUSTMENT_TYPES).default("ChangeInCapacity"),
  minAdjustmentMagnitude: storableInteger(1).optional(),
  scaleOut: stepAlarmSchema.default({
    threshold: 80,
    stepAdjustments: [
      { metricIntervalLowerBound: 0, metricIntervalUpperBound: 10, scalingAdjustment: 1 },
      { metricIntervalLowerBound: 10, scalingAdjustment: 2 },
    ],
  }),
  scaleIn: stepAlarmSchema.default({
    threshold: 30,
    stepAdjustments: [{ metricIntervalUpperBound: 0, scalingAdjustment: -1 }],
  }),
});
export type StepScaling = z.output<typeof stepScalingSchema>;

/**
 * KEDA's `fallback`: once a proxy's metrics have missed `failureThreshold` reconcile intervals in a row, the
 * control loop holds the count (`replicas` absent) or moves to `replicas` (kept within min/max).
 */
export const fallbackSchema = z.strictObject({
  failureThreshold: storableInteger(1).default(3),
  replicas: storableInteger(0).optional(),
});
export type Fallback = z.output<typeof fallbackSchema>;

/** A week: the longest a scheduled window may last. */
export const MAX_SCHEDULE_MINUTES = 10_080;

/**
 * A scheduled capacity window: from each start of `cron` (in the policy's time zone) for `durationMinutes`,
 * the replica bounds it sets replace the policy's (docs/engine.md, "Scheduled capacity").
 */
export const capacityWindowSchema = z
  .strictObject({
    name: storableText().min(1).max(100),
    cron: storableText()
      .min(1)
      .max(200)
      .superRefine((pattern, ctx) => {
        const error = cronError(pattern);
        if (error !== null) ctx.addIssue({ code: "custom", message: `not a cron expression: ${error}` });
      }),
    durationMinutes: storableInteger(1).max(MAX_SCHEDULE_MINUTES, {
      message: `must be at most ${MAX_SCHEDULE_MINUTES} (a week)`,
    }),
    minReplicas: storableInteger(0).optional(),
    maxReplicas: storableInteger(1).optional(),
  })
  .superRefine((window, ctx) => {
    const { minReplicas, maxReplicas } = window;
    if (minReplicas === undefined && maxReplicas === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["minReplicas"],
        message: "a window sets minReplicas, maxReplicas or both",
      });
    }
    if (minReplicas !== undefined && maxReplicas !== undefined && maxReplicas < minReplicas) {
      ctx.addIssue({
        code: "custom",
        path: ["maxReplicas"],
        message: `must be ≥ minReplicas (${minReplicas})`,
      });
    }
  });
export type CapacityWindow = z.output<typeof capacityWindowSchema>;

const policyFields = {
  /** The seed's fields, with the seed's defaults. */
  minReplicas: storableInteger(0).default(1),
  maxReplicas: storableInteger(1).default(10),
  targetCpuPercent: percent.default(70),
  targetMemoryPercent: percent.default(80),
  targetRequestRate: positive.default(1000),
  scaleUpThreshold: percent.default(80),
  scaleDownThreshold: percent.default(30),
  scaleUpCooldownSeconds: cooldown.default(60),
  scaleDownCooldownSeconds: cooldown.default(300),

  strategy: z.enum(STRATEGY_NAMES).default("threshold"),
  mode: z.enum(POLICY_MODES).default("auto"),
  /** Replicas added or removed by one threshold step. */
  scaleUpStep: storableInteger(1).default(1),
  scaleDownStep: storableInteger(1).default(1),
  /** Per-replica latency target (target tracking). */
  targetLatencyMs: positive.optional(),
  /** Per-replica average targets of custom metrics (target tracking), by metric name. */
  customMetricTargets: z.record(metricNameSchema, positive).default({}),
  /** Samples older than this never drive a decision. */
  metricsMaxAgeSeconds: seconds
    .min(1, { message: "must be at least 1" })
    .max(POLICY_DURATION_LIMITS.metricsMaxAgeSeconds, {
      message: `must be at most ${POLICY_DURATION_LIMITS.metricsMaxAgeSeconds} (a day)`,
    })
    .default(60),
  behavior: behaviorSchema.prefault({}),
  stepScaling: stepScalingSchema.prefault({}),
  predictive: predictiveSchema.prefault({}),
  fallback: fallbackSchema.prefault({}),
  /** The IANA time zone schedules and the budget's month are read in (UTC when absent). */
  timeZone: storableText()
    .min(1)
    .max(100)
    .refine(isKnownTimeZone, { message: "must be an IANA time zone such as Europe/Berlin" })
    .optional(),
  schedules: z.array(capacityWindowSchema).max(50).optional(),
  /** What one replica costs per hour, in the operator's currency. */
  costPerReplicaHour: z.number().min(0, { message: "must not be negative" }).optional(),
  /** Caps scale-up at what the rest of the month's budget affords; needs costPerReplicaHour. */
  monthlyBudget: positive.optional(),
  /**
   * With minReplicas 0: how long the fleet must see no request before it goes to 0 (Knative's
   * scale-to-zero-grace-period, 30 s by default). An hour at most: idle longer than that is idle.
   */
  scaleToZeroGracePeriodSeconds: seconds
    .max(POLICY_DURATION_LIMITS.scaleToZeroGracePeriodSeconds, { message: "must be at most 3600 (an hour)" })
    .default(30),
};

function checkPolicyRules(
  policy: {
    minReplicas: number;
    maxReplicas: number;
    scaleUpThreshold: number;
    scaleDownThreshold: number;
    monthlyBudget?: number | undefined;
    costPerReplicaHour?: number | undefined;
  },
  ctx: z.RefinementCtx,
) {
  if (policy.monthlyBudget !== undefined && policy.costPerReplicaHour === undefined) {
    ctx.addIssue({ code: "custom", path: ["monthlyBudget"], message: "needs costPerReplicaHour" });
  }
  if (policy.maxReplicas < policy.minReplicas) {
    ctx.addIssue({
      code: "custom",
      path: ["maxReplicas"],
      message: `must be ≥ minReplicas (${policy.minReplicas})`,
    });
  }
  if (policy.scaleDownThreshold >= policy.scaleUpThreshold) {
    ctx.addIssue({
      code: "custom",
      path: ["scaleDownThreshold"],
      message: `must be below scaleUpThreshold (${policy.scaleUpThreshold})`,
    });
  }
}

/** A full scaling policy. Parsing fills every default; unknown fields are rejected. */
export const scalingPolicySchema = z
  .strictObject(policyFields)
  .superRefine(checkPolicyRules)
  .meta({ id: "ScalingPolicy" });
export type ScalingPolicy = z.output<typeof scalingPolicySchema>;
export type ScalingPolicyInput = z.input<typeof scalingPolicySchema>;

export const DEFAULT_POLICY: ScalingPolicy = scalingPolicySchema.parse({});

export function parsePolicy(input: unknown): ScalingPolicy {
  return scalingPolicySchema.parse(input);
}

/** Whether a direction's window and rate-policy periods are within their bounds (false for NaN, as `<=` is). */
function rulesWithinDurationLimits(rules: ScalingRules): boolean {
  if (!(rules.stabilizationWindowSeconds <= POLICY_DURATION_LIMITS.stabilizationWindowSeconds)) return false;
  for (const rule of rules.policies)
    if (!(rule.periodSeconds <= POLICY_DURATION_LIMITS.periodSeconds)) return false;
  return true;
}

/**
 * `policy` with every duration at most its POLICY_DURATION_LIMITS bound: what `decide` works with, so a policy
 * that never met the schema (an old row, a caller's literal) still gives finite times. The same object when
 * nothing is past a bound.
 */
export function withinDurationLimits(policy: ScalingPolicy): ScalingPolicy {
  const limits = POLICY_DURATION_LIMITS;
  const { scaleUp, scaleDown } = policy.behavior;
  if (
    policy.scaleUpCooldownSeconds <= limits.cooldownSeconds &&
    policy.scaleDownCooldownSeconds <= limits.cooldownSeconds &&
    policy.metricsMaxAgeSeconds <= limits.metricsMaxAgeSeconds &&
    policy.scaleToZeroGracePeriodSeconds <= limits.scaleToZeroGracePeriodSeconds &&
    rulesWithinDurationLimits(scaleUp) &&
    rulesWithinDurationLimits(scaleDown)
  ) {
    return policy;
  }
  const clampRules = (rules: ScalingRules): ScalingRules => ({
    ...rules,
    stabilizationWindowSeconds: Math.min(rules.stabilizationWindowSeconds, limits.stabilizationWindowSeconds),
    policies: rules.policies.map((rule) => ({
      ...rule,
      periodSeconds: Math.min(rule.periodSeconds, limits.periodSeconds),
    })),
  });
  return {
    ...policy,
    scaleUpCooldownSeconds: Math.min(policy.scaleUpCooldownSeconds, limits.cooldownSeconds),
    scaleDownCooldownSeconds: Math.min(policy.scaleDownCooldownSeconds, limits.cooldownSeconds),
    metricsMaxAgeSeconds: Math.min(policy.metricsMaxAgeSeconds, limits.metricsMaxAgeSeconds),
    scaleToZeroGracePeriodSeconds: Math.min(
      policy.scaleToZeroGracePeriodSeconds,
      limits.scaleToZeroGracePeriodSeconds,
    ),
    behavior: { scaleUp: clampRules(scaleUp), scaleDown: clampRules(scaleDown) },
  };
}

/**
 * A policy read back from storage. Written before a bound existed, a value may be past it (a cooldown of 2^52 s):
 * refusing it at read would break every read and decision of its proxy, so each number above its field's bound
 * reads as the bound (the decision then says what it used). Anything else invalid still throws.
 */
export function parseStoredPolicy(input: unknown): ScalingPolicy {
  let candidate = input;
  for (let attempt = 0; attempt < 32; attempt++) {
    const result = scalingPolicySchema.safeParse(candidate);
    if (result.success) return result.data;
    const tooBig = result.error.issues.filter(
      (issue): issue is z.core.$ZodIssueTooBig =>
        issue.code === "too_big" && typeof issue.maximum === "number" && issue.origin === "number",
    );
    if (tooBig.length === 0) break;
    candidate = structuredClone(candidate);
    for (const issue of tooBig) setAt(candidate, issue.path, Number(issue.maximum));
  }
  return scalingPolicySchema.parse(input);
}

function setAt(target: unknown, path: readonly PropertyKey[], value: number) {
  let node = target as Record<PropertyKey, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<PropertyKey, unknown>;
  const last = path.at(-1);
  if (last !== undefined) node[last] = value;
}
