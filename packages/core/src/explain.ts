import type { Decision, Limit } from "./decision.ts";
import { formatNumber } from "./format.ts";
import { strategies } from "./strategies/index.ts";

function shortMetric(metric: string): string {
  switch (metric) {
    case "cpuPercent":
      return "cpu";
    case "memoryPercent":
      return "memory";
    case "avgLatencyMs":
      return "latency";
    case "errorRatePercent":
      return "error rate";
    default:
      return metric.startsWith("custom.") ? metric.slice(7) : metric;
  }
}

const LOCAL_FORMATS = new Map<string, Intl.DateTimeFormat>();

/** e.g. "2026-03-29 18:00 Europe/Berlin": a window's end as the operator reads it. */
function localTime(at: number, timeZone: string): string {
  // A formatter costs far more to build than to use, and a simulation explains thousands of decisions.
  let format = LOCAL_FORMATS.get(timeZone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat("en-CA", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
    LOCAL_FORMATS.set(timeZone, format);
  }
  const parts = format.formatToParts(at);
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
  return `${part("year")}-${part("month")}-${part("day")} ${part("hour")}:${part("minute")} ${timeZone}`;
}

const DIRECTION = { scale_up: "scale-up", scale_down: "scale-down" } as const;
const RULES = { scale_up: "scaleUp", scale_down: "scaleDown" } as const;

/** One limit as a clause, e.g. "capped at 4 by scaleUp policy Pods 4 per 15s". */
export function describeLimit(limit: Limit): string {
  switch (limit.kind) {
    case "noMetrics":
      return limit.metric === undefined
        ? `no live metrics in the last ${limit.maxAgeSeconds}s`
        : `no live ${limit.metric} reading: no scale down`;
    case "health": {
      const factor =
        limit.loadFactor !== undefined && limit.loadFactor !== 1
          ? `, their load ×${formatNumber(limit.loadFactor, 2)}`
          : "";
      const total = limit.unhealthyReplicas + limit.servingReplicas;
      return `${limit.unhealthyReplicas} of ${total} replicas unhealthy (${limit.servingReplicas} serving${factor})`;
    }
    case "tolerance":
      return `${limit.metric === undefined ? "" : `${shortMetric(limit.metric)} `}ratio ${formatNumber(limit.ratio, 2)} within ${DIRECTION[limit.direction]} tolerance ${limit.tolerance}`;
    case "cooldown":
      return `held by ${DIRECTION[limit.direction]} cooldown ${limit.cooldownSeconds}s (${formatNumber(limit.remainingSeconds)}s left)`;
    case "stabilization":
      return `held at ${limit.to} by ${RULES[limit.direction]} stabilization window ${limit.windowSeconds}s`;
    case "ratePolicy": {
      const verb = limit.direction === "scale_up" ? "capped at" : "limited to";
      if (limit.policy === undefined)
        return `held at ${limit.to}: ${RULES[limit.direction]} selectPolicy Disabled`;
      const { type, value, periodSeconds } = limit.policy;
      return `${verb} ${limit.to} by ${RULES[limit.direction]} policy ${type} ${value} per ${periodSeconds}s`;
    }
    case "minReplicas":
      return `raised to ${limit.to} by minReplicas ${limit.value}`;
    case "maxReplicas":
      return `capped at ${limit.to} by maxReplicas ${limit.value}`;
    case "tierCap":
      return `capped at ${limit.to} by tier cap ${limit.value}`;
    case "budget":
      if (limit.monthlyBudget === undefined) return `capped at ${limit.to} by budget ${limit.value}`;
      return `the budget, not the load, set ${limit.to}: ${formatNumber(limit.spent ?? 0, 2)} of ${formatNumber(limit.monthlyBudget, 2)} spent this month affords ${limit.value} replicas for the ${formatNumber(limit.remainingHours ?? 0)}h left`;
    case "schedule": {
      const names = limit.windows.map(
        (window) => `"${window.name}" until ${localTime(window.endsAt, limit.timeZone)}`,
      );
      const moved =
        limit.from === limit.to ? "" : `: ${limit.to >= limit.from ? "raised" : "lowered"} to ${limit.to}`;
      return `scheduled window ${names.join(", ")} sets bounds ${limit.minReplicas}–${limit.maxReplicas}${moved}`;
    }
    case "minAdjustmentMagnitude":
      return `${limit.to >= limit.from ? "raised" : "lowered"} to ${limit.to} by minAdjustmentMagnitude ${limit.value}`;
    case "fallback":
      return limit.replicas === undefined
        ? `fallback after ${limit.missedIntervals} missed intervals (threshold ${limit.failureThreshold}): hold at ${limit.to}`
        : `fallback after ${limit.missedIntervals} missed intervals (threshold ${limit.failureThreshold}): ${limit.to} replicas`;
    case "scaleToZero":
      return limit.to === 0
        ? `no request for ${formatNumber(limit.idleSeconds)}s (scale-to-zero grace ${limit.gracePeriodSeconds}s): to 0`
        : `last request ${formatNumber(limit.idleSeconds)}s ago, within scale-to-zero grace ${limit.gracePeriodSeconds}s: held at ${limit.to}`;
    case "activation":
      if (limit.source === "front")
        return `activation: ${limit.heldRequests} requests held at the front: raised to ${limit.to}`;
      return limit.source === "metrics"
        ? `activation: request rate ${formatNumber(limit.requestRate, 2)}/s above activation threshold ${limit.threshold}: raised to ${limit.to}`
        : `at zero: request rate ${formatNumber(limit.requestRate, 2)}/s not above activation threshold ${limit.threshold}: held at 0`;
    case "inFlight":
      return `skipped: scale to ${limit.toReplicas} already in flight (event ${limit.eventId})`;
    case "mode":
      if (limit.mode === "forecastOnly") return "forecast only: not executed";
      return limit.mode === "dryRun"
        ? "dry run: not executed"
        : `paused (mode off): held at ${limit.to} instead of ${limit.from}`;
  }
}

/**
 * The decision as one readable sentence, built only from the structured decision (so a stored decision can be
 * explained again): the strategy's reasoning, every limit in pipeline order, then the outcome.
 * e.g. "cpu 78% vs target 50% → 5 replicas; capped at 4 by scaleUp policy Pods 4 per 15s; scale up 2 → 4".
 */
export function explainDecision(decision: Omit<Decision, "explanation">): string {
  // Joined, not concatenated: `join` makes one flat string, where `a + b` chains keep every piece alive (a
  // simulation keeps tens of thousands of these).
  const clauses: string[] = [];
  const basis = decision.basis;
  if (basis !== undefined && basis !== null) {
    // The registry entry for basis.strategy takes exactly this basis; TypeScript cannot correlate the two.
    const reasoning = strategies[basis.strategy].describe(basis as never);
    if (reasoning !== "") clauses.push(reasoning);
  }
  for (const limit of decision.limits) clauses.push(describeLimit(limit));
  clauses.push(
    decision.action === "scale_up"
      ? `scale up ${decision.currentReplicas} → ${decision.desiredReplicas}`
      : decision.action === "scale_down"
        ? `scale down ${decision.currentReplicas} → ${decision.desiredReplicas}`
        : `no change at ${decision.currentReplicas}`,
  );
  return clauses.join("; ");
}
