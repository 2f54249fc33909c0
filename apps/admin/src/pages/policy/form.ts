import {
  POLICY_MODES,
  type ScalingPolicy,
  SELECT_POLICIES,
  STEP_ADJUSTMENT_TYPES,
  STRATEGY_NAMES,
  scalingPolicySchema,
} from "@proxyscale/core";

/**
 * The policy form's fields: one per policy field (lists and maps as JSON), addressed by their path in the
 * policy. Validation is core's scalingPolicySchema; this module only maps its issues onto the fields.
 */
export type FieldKind = "number" | "select" | "text" | "json";
export interface Field {
  path: string;
  label: string;
  kind: FieldKind;
  options?: readonly string[];
  group: string;
}

const n = (group: string, path: string, label: string): Field => ({ path, label, kind: "number", group });
const s = (group: string, path: string, label: string, options: readonly string[]): Field => ({
  path,
  label,
  kind: "select",
  options,
  group,
});
const j = (group: string, path: string, label: string): Field => ({ path, label, kind: "json", group });

export const FIELDS: Field[] = [
  n("Replicas", "minReplicas", "Minimum replicas"),
  n("Replicas", "maxReplicas", "Maximum replicas"),
  s("Strategy", "strategy", "Strategy", STRATEGY_NAMES),
  s("Strategy", "mode", "Mode", POLICY_MODES),
  n("Strategy", "metricsMaxAgeSeconds", "Metrics max age (s)"),
  n("Thresholds", "scaleUpThreshold", "Scale-up threshold (load score)"),
  n("Thresholds", "scaleDownThreshold", "Scale-down threshold (load score)"),
  n("Thresholds", "scaleUpStep", "Scale-up step (replicas)"),
  n("Thresholds", "scaleDownStep", "Scale-down step (replicas)"),
  n("Thresholds", "scaleUpCooldownSeconds", "Scale-up cooldown (s)"),
  n("Thresholds", "scaleDownCooldownSeconds", "Scale-down cooldown (s)"),
  n("Targets", "targetCpuPercent", "Target CPU %"),
  n("Targets", "targetMemoryPercent", "Target memory %"),
  n("Targets", "targetRequestRate", "Target request rate (per replica)"),
  n("Targets", "targetLatencyMs", "Target latency ms (optional)"),
  j("Targets", "customMetricTargets", "Custom metric targets (JSON object)"),
  n("Behavior: scale up", "behavior.scaleUp.stabilizationWindowSeconds", "Stabilization window (s)"),
  s("Behavior: scale up", "behavior.scaleUp.selectPolicy", "Select policy", SELECT_POLICIES),
  n("Behavior: scale up", "behavior.scaleUp.tolerance", "Tolerance"),
  j("Behavior: scale up", "behavior.scaleUp.policies", "Rate policies (JSON list)"),
  n("Behavior: scale down", "behavior.scaleDown.stabilizationWindowSeconds", "Stabilization window (s)"),
  s("Behavior: scale down", "behavior.scaleDown.selectPolicy", "Select policy", SELECT_POLICIES),
  n("Behavior: scale down", "behavior.scaleDown.tolerance", "Tolerance"),
  j("Behavior: scale down", "behavior.scaleDown.policies", "Rate policies (JSON list)"),
  { path: "stepScaling.metric", label: "Metric", kind: "text", group: "Step scaling" },
  s("Step scaling", "stepScaling.adjustmentType", "Adjustment type", STEP_ADJUSTMENT_TYPES),
  n("Step scaling", "stepScaling.minAdjustmentMagnitude", "Min adjustment magnitude (optional)"),
  n("Step scaling", "stepScaling.scaleOut.threshold", "Scale-out alarm threshold"),
  j("Step scaling", "stepScaling.scaleOut.stepAdjustments", "Scale-out step adjustments (JSON list)"),
  n("Step scaling", "stepScaling.scaleIn.threshold", "Scale-in alarm threshold"),
  j("Step scaling", "stepScaling.scaleIn.stepAdjustments", "Scale-in step adjustments (JSON list)"),
  n("Fallback", "fallback.failureThreshold", "Failure threshold (missed intervals)"),
  n("Fallback", "fallback.replicas", "Fallback replicas (optional: empty holds)"),
];

export function getPath(value: unknown, path: string): unknown {
  let current = value;
  for (const key of path.split(".")) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** A copy of `value` with `path` set (undefined removes the key, so the schema's default applies). */
export function setPath<T>(value: T, path: string, next: unknown): T {
  const [key, ...rest] = path.split(".") as [string, ...string[]];
  const object = { ...((value ?? {}) as Record<string, unknown>) };
  if (rest.length === 0) {
    if (next === undefined) delete object[key];
    else object[key] = next;
  } else {
    object[key] = setPath(object[key], rest.join("."), next);
  }
  return object as T;
}

/** The text an input shows for a field's value. */
export function toText(field: Field, value: unknown): string {
  if (value === undefined || value === null) return "";
  return field.kind === "json" ? JSON.stringify(value) : String(value);
}

/** A field's text as the value the schema checks; a JSON syntax error is the field's own error. */
export function fromText(field: Field, text: string): { value: unknown } | { error: string } {
  if (field.kind === "select" || field.kind === "text") return { value: text === "" ? undefined : text };
  if (text.trim() === "") return { value: undefined };
  if (field.kind === "number") return { value: Number(text) };
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    return { error: `is not valid JSON: ${(error as Error).message}` };
  }
}

export type Validation =
  | { ok: true; policy: ScalingPolicy; errors: Record<string, string[]> }
  | { ok: false; errors: Record<string, string[]> };

/** The field a schema issue belongs to: the longest field path that prefixes the issue's path. */
export function fieldOf(path: readonly PropertyKey[]): string {
  const joined = path.map(String).join(".");
  let best = "";
  for (const field of FIELDS) {
    if ((joined === field.path || joined.startsWith(`${field.path}.`)) && field.path.length > best.length) {
      best = field.path;
    }
  }
  return best;
}

/** Core's schema on the draft, with every issue under its field ("" for the policy as a whole). */
export function validateDraft(draft: unknown): Validation {
  const parsed = scalingPolicySchema.safeParse(draft);
  if (parsed.success) return { ok: true, policy: parsed.data, errors: {} };
  const errors: Record<string, string[]> = {};
  for (const issue of parsed.error.issues) {
    const field = fieldOf(issue.path);
    const rest = issue.path
      .map(String)
      .join(".")
      .slice(field.length + 1);
    errors[field] = [...(errors[field] ?? []), rest ? `${rest}: ${issue.message}` : issue.message];
  }
  return { ok: false, errors };
}

export interface Change {
  path: string;
  before: unknown;
  after: unknown;
}

function flatten(value: unknown, prefix: string, out: Map<string, unknown>) {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? `${prefix}.${key}` : key, out);
    // An empty object is a value of its own (customMetricTargets: {}).
    if (Object.keys(value).length === 0 && prefix) out.set(prefix, value);
  } else if (prefix) {
    out.set(prefix, value);
  }
  return out;
}

/** Every leaf that differs between two policies (lists compared whole), in field order. */
export function diffPolicies(before: ScalingPolicy, after: ScalingPolicy): Change[] {
  const a = flatten(before, "", new Map());
  const b = flatten(after, "", new Map());
  const paths = [...new Set([...a.keys(), ...b.keys()])];
  return paths
    .filter((path) => JSON.stringify(a.get(path)) !== JSON.stringify(b.get(path)))
    .map((path) => ({ path, before: a.get(path), after: b.get(path) }));
}
