import { Cron } from "croner";
import { PG_INTEGER_MAX } from "./storable.ts";

/**
 * Scheduled capacity and the monthly budget (docs/engine.md, "Scheduled capacity", "Budget"). Pure: every
 * function takes the time as an argument; croner only does the calendar arithmetic in the proxy's time zone.
 */

export const DEFAULT_TIME_ZONE = "UTC";

/** Whether `timeZone` is an IANA zone this runtime knows (Intl throws a RangeError for an unknown one). */
export function isKnownTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone });
    return true;
  } catch {
    return false;
  }
}

// Parsing a pattern is the expensive part; a policy's few patterns are parsed once per zone.
const compiled = new Map<string, Cron>();
function cronFor(pattern: string, timeZone: string): Cron {
  const key = `${timeZone}\u0000${pattern}`;
  let cron = compiled.get(key);
  if (cron === undefined) {
    if (compiled.size > 1000) compiled.clear();
    cron = new Cron(pattern, { timezone: timeZone, paused: true });
    compiled.set(key, cron);
  }
  return cron;
}

/**
 * Each pattern's run interval last asked about: [start, next) holds the latest run at or before a time in it.
 * A decision asks at every push (a simulation 43,200 times), and croner's calendar search costs tens of µs.
 */
const runIntervals = new WeakMap<Cron, { start: number; next: number }>();

/** The latest run of `cron` at or before `now` (epoch ms) and the first after it (Infinity: none), or undefined. */
function runInterval(cron: Cron, now: number): { start: number; next: number } | undefined {
  const cached = runIntervals.get(cron);
  if (cached !== undefined && cached.start <= now && now < cached.next) return cached;
  // previousRuns excludes its reference: +1 ms makes a run exactly at `now` count.
  const [start] = cron.previousRuns(1, new Date(now + 1));
  if (start === undefined) return undefined;
  const interval = {
    start: start.getTime(),
    next: cron.nextRun(new Date(now))?.getTime() ?? Number.POSITIVE_INFINITY,
  };
  if (interval.start <= now && now < interval.next) runIntervals.set(cron, interval);
  return interval;
}

/** Why `pattern` is not a cron expression croner accepts, or null when it is. */
export function cronError(pattern: string): string | null {
  try {
    new Cron(pattern, { paused: true });
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

export interface CapacityWindowSpec {
  name: string;
  cron: string;
  durationMinutes: number;
  minReplicas?: number | undefined;
  maxReplicas?: number | undefined;
}

export interface ActiveWindow {
  name: string;
  startedAt: number;
  endsAt: number;
  minReplicas?: number;
  maxReplicas?: number;
}

/**
 * The windows active at `now` (epoch ms): those whose latest start at or before `now` is less than
 * `durationMinutes` ago. Only the latest start matters: an earlier start of the same window ends earlier.
 */
export function activeWindows(
  schedules: readonly CapacityWindowSpec[],
  timeZone: string,
  now: number,
): ActiveWindow[] {
  const active: ActiveWindow[] = [];
  for (const schedule of schedules) {
    const startedAt = runInterval(cronFor(schedule.cron, timeZone), now)?.start;
    if (startedAt === undefined) continue;
    const endsAt = startedAt + schedule.durationMinutes * 60_000;
    if (endsAt <= now) continue;
    const window: ActiveWindow = { name: schedule.name, startedAt, endsAt };
    if (schedule.minReplicas !== undefined) window.minReplicas = schedule.minReplicas;
    if (schedule.maxReplicas !== undefined) window.maxReplicas = schedule.maxReplicas;
    active.push(window);
  }
  return active;
}

/**
 * The bounds while `windows` are active. Overlapping windows combine as the max of their mins and the min of
 * their maxes; a bound no window sets is the policy's. When the result crosses, a window's bound wins over the
 * policy's, and between two windows' bounds the max wins (the cap is the cost guard).
 */
export function scheduledBounds(
  policy: { minReplicas: number; maxReplicas: number },
  windows: readonly ActiveWindow[],
): { minReplicas: number; maxReplicas: number } {
  let windowMin: number | undefined;
  let windowMax: number | undefined;
  for (const window of windows) {
    if (window.minReplicas !== undefined) windowMin = Math.max(windowMin ?? 0, window.minReplicas);
    if (window.maxReplicas !== undefined)
      windowMax = Math.min(windowMax ?? Number.POSITIVE_INFINITY, window.maxReplicas);
  }
  let minReplicas = windowMin ?? policy.minReplicas;
  let maxReplicas = windowMax ?? policy.maxReplicas;
  if (minReplicas > maxReplicas) {
    if (windowMax === undefined) maxReplicas = minReplicas;
    else minReplicas = maxReplicas;
  }
  return { minReplicas, maxReplicas };
}

/** The calendar month containing `now` in `timeZone`, as epoch ms [start, end). */
export function monthBounds(timeZone: string, now: number): { start: number; end: number } {
  const cron = cronFor("0 0 1 * *", timeZone);
  const interval = runInterval(cron, now);
  if (interval === undefined || interval.next === Number.POSITIVE_INFINITY)
    throw new Error(`no month boundary around ${now} in ${timeZone}`);
  return { start: interval.start, end: interval.next };
}

export interface BudgetInput {
  costPerReplicaHour: number;
  monthlyBudget: number;
  /** Replica-hours run so far this month. */
  replicaHoursThisMonth: number;
  timeZone: string;
}

export interface BudgetCap {
  /** The most replicas the remaining budget affords for the rest of the month. */
  affordableReplicas: number;
  spent: number;
  remainingHours: number;
}

/**
 * The most replicas the budget affords: what is left of it (monthlyBudget − replica-hours × cost) spread over
 * the hours left in the month (in the proxy's time zone), rounded down, never negative.
 */
export function budgetCap(input: BudgetInput, now: number): BudgetCap {
  const { end } = monthBounds(input.timeZone, now);
  const remainingHours = Math.max(0, (end - now) / 3_600_000);
  const spent = input.replicaHoursThisMonth * input.costPerReplicaHour;
  const left = Math.max(0, input.monthlyBudget - spent);
  const perReplica = input.costPerReplicaHour * remainingHours;
  const affordable = perReplica > 0 ? Math.floor(left / perReplica) : PG_INTEGER_MAX;
  return { affordableReplicas: Math.min(affordable, PG_INTEGER_MAX), spent, remainingHours };
}

export interface MonthSpend {
  monthStart: number;
  monthEnd: number;
  /** Replica-hours × cost so far this month. */
  spent: number;
  /** `spent` plus the current replicas running to the month's end. */
  projected: number;
  monthlyBudget: number | null;
}

/** Spend so far this month and the month's projection at the current count. */
export function monthSpend(
  input: { costPerReplicaHour: number; monthlyBudget?: number | undefined; timeZone: string },
  replicaHoursThisMonth: number,
  currentReplicas: number,
  now: number,
): MonthSpend {
  const { start, end } = monthBounds(input.timeZone, now);
  const spent = replicaHoursThisMonth * input.costPerReplicaHour;
  const remainingHours = Math.max(0, (end - now) / 3_600_000);
  return {
    monthStart: start,
    monthEnd: end,
    spent,
    projected: spent + currentReplicas * input.costPerReplicaHour * remainingHours,
    monthlyBudget: input.monthlyBudget ?? null,
  };
}

/**
 * Replica-hours in [from, to) of a step function of replica counts: `changes` are (at, replicas) points in time
 * order, `initialReplicas` the count at `from`. Used by the db (its replica history) and tests alike.
 */
export function replicaHours(
  initialReplicas: number,
  changes: readonly { at: number; replicas: number }[],
  from: number,
  to: number,
): number {
  let hours = 0;
  let replicas = initialReplicas;
  let since = from;
  for (const change of changes) {
    if (change.at <= from) {
      replicas = change.replicas;
      continue;
    }
    if (change.at >= to) break;
    hours += (replicas * (change.at - since)) / 3_600_000;
    replicas = change.replicas;
    since = change.at;
  }
  if (to > since) hours += (replicas * (to - since)) / 3_600_000;
  return hours;
}
