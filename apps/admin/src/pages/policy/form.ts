import {
  HPA_POLICY_TYPES,
  POLICY_MODES,
  type ScalingPolicy,
  SELECT_POLICIES,
  STEP_ADJUSTMENT_TYPES,
  STRATEGY_NAMES,
  scalingPolicySchema,
} from "@proxyscale/core";

/**
 * The policy form's fields: one per policy field, addressed by their path in the policy; lists and maps are
 * edited as rows of columns. Validation is core's scalingPolicySchema; this module only maps its issues onto
 * the fields.
 */
export type CellKind = "number" | "select" | "text";
export type FieldKind = CellKind | "list" | "map";
/** One column of a list's rows (a key of its items) or of a map's rows ("name" and "value"). */
export interface Column {
  key: string;
  label: string;
  kind: CellKind;
  options?: readonly string[];
}
export interface Field {
  path: string;
  label: string;
  kind: FieldKind;
  options?: readonly string[];
  /** For lists and maps: the columns of a row, and what one row is called ("rate policy"). */
  columns?: readonly Column[];
  item?: string;
  group: string;
}
/** A list's or map's row as the inputs show it, by column key. */
export type Row = Record<string, string>;

const n = (group: string, path: string, label: string): Field => ({ path, label, kind: "number", group });
const s = (group: string, path: string, label: string, options: readonly string[]): Field => ({
  path,
  label,
  kind: "select",
  options,
  group,
});
const RATE_POLICY_COLUMNS: Column[] = [
  { key: "type", label: "Type", kind: "select", options: HPA_POLICY_TYPES },
  { key: "value", label: "Value", kind: "number" },
  { key: "periodSeconds", label: "Period (s)", kind: "number" },
];
const STEP_COLUMNS: Column[] = [
  { key: "metricIntervalLowerBound", label: "Lower bound (optional)", kind: "number" },
  { key: "metricIntervalUpperBound", label: "Upper bound (optional)", kind: "number" },
  { key: "scalingAdjustment", label: "Adjustment", kind: "number" },
];
const list = (group: string, path: string, label: string, item: string, columns: Column[]): Field => ({
  path,
  label,
  kind: "list",
  item,
  columns,
  group,
});

export const FIELDS: Field[] = [
  n("Replicas", "minReplicas", "Minimum replicas"),
  n("Replicas", "maxReplicas", "Maximum replicas"),
  n("Replicas", "scaleToZeroGracePeriodSeconds", "Scale-to-zero grace period (s, with minimum 0)"),
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
  {
    path: "customMetricTargets",
    label: "Custom metric targets",
    kind: "map",
    item: "custom metric target",
    columns: [
      { key: "name", label: "Metric name", kind: "text" },
      { key: "value", label: "Target (per replica)", kind: "number" },
    ],
    group: "Targets",
  },
  n("Behavior: scale up", "behavior.scaleUp.stabilizationWindowSeconds", "Stabilization window (s)"),
  s("Behavior: scale up", "behavior.scaleUp.selectPolicy", "Select policy", SELECT_POLICIES),
  n("Behavior: scale up", "behavior.scaleUp.tolerance", "Tolerance"),
  list(
    "Behavior: scale up",
    "behavior.scaleUp.policies",
    "Rate policies",
    "rate policy",
    RATE_POLICY_COLUMNS,
  ),
  n("Behavior: scale down", "behavior.scaleDown.stabilizationWindowSeconds", "Stabilization window (s)"),
  s("Behavior: scale down", "behavior.scaleDown.selectPolicy", "Select policy", SELECT_POLICIES),
  n("Behavior: scale down", "behavior.scaleDown.tolerance", "Tolerance"),
  list(
    "Behavior: scale down",
    "behavior.scaleDown.policies",
    "Rate policies",
    "rate policy",
    RATE_POLICY_COLUMNS,
  ),
  n("Predictive", "predictive.warmupSeconds", "Warm-up: forecast ahead by (s)"),
  n(
    "Predictive",
    "predictive.headroomQuantile",
    "Headroom quantile of the forecast's errors (optional: none)",
  ),
  { path: "stepScaling.metric", label: "Metric", kind: "text", group: "Step scaling" },
  s("Step scaling", "stepScaling.adjustmentType", "Adjustment type", STEP_ADJUSTMENT_TYPES),
  n("Step scaling", "stepScaling.minAdjustmentMagnitude", "Min adjustment magnitude (optional)"),
  n("Step scaling", "stepScaling.scaleOut.threshold", "Scale-out alarm threshold"),
  list(
    "Step scaling",
    "stepScaling.scaleOut.stepAdjustments",
    "Scale-out step adjustments",
    "step",
    STEP_COLUMNS,
  ),
  n("Step scaling", "stepScaling.scaleIn.threshold", "Scale-in alarm threshold"),
  list(
    "Step scaling",
    "stepScaling.scaleIn.stepAdjustments",
    "Scale-in step adjustments",
    "step",
    STEP_COLUMNS,
  ),
  n("Fallback", "fallback.failureThreshold", "Failure threshold (missed intervals)"),
  n("Fallback", "fallback.replicas", "Fallback replicas (optional: empty holds)"),
  { path: "timeZone", label: "Time zone (IANA, optional: UTC)", kind: "text", group: "Schedules" },
  list("Schedules", "schedules", "Capacity windows", "window", [
    { key: "name", label: "Name", kind: "text" },
    { key: "cron", label: "Start (cron)", kind: "text" },
    { key: "durationMinutes", label: "Duration (min)", kind: "number" },
    { key: "minReplicas", label: "Min replicas (optional)", kind: "number" },
    { key: "maxReplicas", label: "Max replicas (optional)", kind: "number" },
  ]),
  n("Cost", "costPerReplicaHour", "Cost per replica-hour (optional)"),
  n("Cost", "monthlyBudget", "Monthly budget (optional: caps scale-up)"),
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

/** The text an input shows for a field's value (a list or map: a summary, as the inherited hint). */
export function toText(value: unknown): string {
  if (value === undefined || value === null) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** A scalar input's text as the value the schema checks: empty is unset, so the schema's default applies. */
export function fromText(field: Field | Column, text: string): { value: unknown } {
  if (text.trim() === "") return { value: undefined };
  return { value: field.kind === "number" ? Number(text) : text };
}

/** A list's items, or a map's entries, as rows of input texts. */
export function rowsOf(field: Field, value: unknown): Row[] {
  const columns = field.columns ?? [];
  if (field.kind === "map") {
    return Object.entries((value ?? {}) as Record<string, unknown>).map(([name, target]) => ({
      name,
      value: toText(target),
    }));
  }
  return ((value ?? []) as Record<string, unknown>[]).map((item) =>
    Object.fromEntries(columns.map((column) => [column.key, toText(item[column.key])])),
  );
}

/**
 * Rows back to the list or map the schema checks (an empty cell leaves its key out). A map refuses an empty
 * or repeated name here, since an object cannot hold either and the schema would never see it.
 */
export function fromRows(field: Field, rows: readonly Row[]): { value: unknown } | { error: string } {
  const columns = field.columns ?? [];
  if (field.kind === "map") {
    const entries: [string, unknown][] = [];
    for (const [index, row] of rows.entries()) {
      const name = (row.name ?? "").trim();
      if (name === "") return { error: `${index}.name: must not be empty` };
      if (entries.some(([seen]) => seen === name)) return { error: `${index}.name: "${name}" appears twice` };
      entries.push([name, fromText(columns[1]!, row.value ?? "").value]);
    }
    return { value: Object.fromEntries(entries) };
  }
  return {
    value: rows.map((row) =>
      Object.fromEntries(
        columns
          .map((column) => [column.key, fromText(column, row[column.key] ?? "").value] as const)
          .filter(([, value]) => value !== undefined),
      ),
    ),
  };
}

/** The row and column a list's or map's error ("1.value: …", or a map's "<name>: …") is about. */
export function cellOf(
  field: Field,
  rows: readonly Row[],
  error: string,
): { row: number; column: string } | null {
  const [where] = error.split(": ", 1);
  const [head, key] = (where ?? "").split(".");
  if (field.kind === "map") {
    const byName = rows.findIndex((row) => row.name === head);
    if (byName >= 0) return { row: byName, column: "value" };
    return /^\d+$/.test(head ?? "") && key ? { row: Number(head), column: key } : null;
  }
  return /^\d+$/.test(head ?? "") && key ? { row: Number(head), column: key } : null;
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
