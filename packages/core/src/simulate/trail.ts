/**
 * What a replay remembers between decisions, as the control loop's store remembers it: the scale events and the
 * recorded recommendations within the policy's history window, and the ObservedState built from them. Both the
 * simulator (`simulate`) and the replay of recorded samples (`replayRecorded`) decide through it, so they build
 * the state one way.
 */
import type { Decision, ObservedState, RecommendationRecord, ScaleEventRecord } from "../decision.ts";
import { decide, historySecondsFor, recordedOnReconcile } from "../engine.ts";
import type { MetricSample } from "../metrics.ts";
import type { ScalingPolicy } from "../policy.ts";
import { DEFAULT_TIME_ZONE, monthBounds } from "../schedule.ts";

/**
 * The replica-hours a budgeted policy has run this calendar month, integrated over the counts the decisions
 * saw, from the proxy's registration (as the db's loadReplicaHoursThisMonth integrates its scale events).
 */
class MonthMeter {
  private monthStart = 0;
  private monthEnd = Number.NEGATIVE_INFINITY;
  private hours = 0;

  constructor(
    private readonly timeZone: string,
    private lastAt: number,
    private lastReplicas: number,
  ) {}

  /** Replica-hours this month up to `now`; `replicas` runs from `now` on. */
  advance(now: number, replicas: number): number {
    if (now >= this.monthEnd) {
      const bounds = monthBounds(this.timeZone, now);
      this.monthStart = bounds.start;
      this.monthEnd = bounds.end;
      this.hours = 0;
    }
    const since = Math.max(this.lastAt, this.monthStart);
    if (now > since) this.hours += (this.lastReplicas * (now - since)) / 3_600_000;
    this.lastAt = Math.max(this.lastAt, now);
    this.lastReplicas = replicas;
    return this.hours;
  }
}

export type EvaluationTrigger = "push" | "sync" | "reconcile";

export class DecisionTrail {
  /** Scale events, in time order (the loop's event rows, at their `createdAt`). */
  readonly recentEvents: ScaleEventRecord[] = [];
  /** Recorded recommendations, in time order (the loop's scaling_recommendations rows). */
  readonly recommendations: RecommendationRecord[] = [];
  /** The state handed to `decide`, updated in place: `decide` reads it and keeps nothing of it. */
  readonly state: ObservedState;
  private readonly historyMs: number;
  private readonly decideOptions: { explain: boolean };
  private readonly meter: MonthMeter | null;

  constructor(
    private readonly policy: ScalingPolicy,
    options: {
      createdAt: number;
      reconcileIntervalMs: number;
      initialReplicas: number;
      /** Build each decision's explanation (false: the caller explains the ones it keeps). */
      explain: boolean;
    },
  ) {
    this.historyMs = historySecondsFor(policy) * 1000;
    this.decideOptions = { explain: options.explain };
    this.meter =
      policy.monthlyBudget !== undefined && policy.costPerReplicaHour !== undefined
        ? new MonthMeter(policy.timeZone ?? DEFAULT_TIME_ZONE, options.createdAt, options.initialReplicas)
        : null;
    this.state = {
      currentReplicas: options.initialReplicas,
      unhealthyReplicas: 0,
      samples: [],
      recentEvents: this.recentEvents,
      recommendations: this.recommendations,
      lastSampleAt: null,
      createdAt: options.createdAt,
      activeEvent: null,
      reconcileIntervalMs: options.reconcileIntervalMs,
    };
  }

  /**
   * Decides at `now` on the fleet as given (`samples` is the caller's array of latest samples, kept as
   * `state.samples`). Call `record` next: until then `state` is exactly what the decision was made from.
   */
  decide(
    now: number,
    fleet: {
      currentReplicas: number;
      unhealthyReplicas: number;
      samples: MetricSample[];
      lastSampleAt: number | null;
    },
  ): Decision {
    // Both lists are appended in time order: what left the history window is at the front.
    const cutoff = now - this.historyMs;
    const { recentEvents, recommendations, state } = this;
    while (recentEvents.length > 0 && recentEvents[0]!.at <= cutoff) recentEvents.shift();
    while (recommendations.length > 0 && recommendations[0]!.at <= cutoff) recommendations.shift();
    state.currentReplicas = fleet.currentReplicas;
    state.unhealthyReplicas = fleet.unhealthyReplicas;
    state.samples = fleet.samples;
    state.lastSampleAt = fleet.lastSampleAt;
    if (this.meter !== null) state.replicaHoursThisMonth = this.meter.advance(now, fleet.currentReplicas);
    return decide(this.policy, state, now, this.decideOptions);
  }

  /**
   * Records the decision's recommendation when the loop would: every push, a reconcile's when it is news.
   * Returns whether it did.
   */
  record(decision: Decision, trigger: EvaluationTrigger): boolean {
    if (trigger === "reconcile" && !recordedOnReconcile(decision)) return false;
    this.recommendations.push(decision.recommendation);
    return true;
  }

  /** A scale that happened at `at` (the loop records its event row then). */
  recordScale(at: number, fromReplicas: number, toReplicas: number): void {
    this.recentEvents.push({ at, fromReplicas, toReplicas });
  }
}
