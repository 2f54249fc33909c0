/**
 * The decisions a simulation's steps keep, stored as what each was made from (numbers in one Float64Array, the
 * recorded recommendations and scale events as number arrays) instead of as Decision objects. A Decision is
 * about a dozen objects; 43,200 of them alive through a 30-day run made the scavenger copy ≈ 23 MB and cost
 * more than deciding. `decide` is a pure function of (policy, state, now), so a step's decision is made again
 * from the same inputs when it is first read: equal to the one the run made (simulate.test.ts proves it against
 * `keepStates`' evaluations), explanation included.
 */
import type { Decision, ObservedState, RecommendationRecord, ScaleEventRecord } from "../decision.ts";
import { decide } from "../engine.ts";
import type { MetricSample } from "../metrics.ts";
import type { ScalingPolicy } from "../policy.ts";

/** One step's slots in `slots`: NaN stands for "none" (no decision kept, null, undefined). */
const AT = 0;
const CURRENT = 1;
const UNHEALTHY = 2;
const LAST_SAMPLE_AT = 3;
const SAMPLE_AT = 4;
const CPU = 5;
const MEMORY = 6;
const REQUEST_RATE = 7;
const LATENCY = 8;
const ERROR_RATE = 9;
const RECOMMENDATIONS_END = 10;
const RECOMMENDATIONS_LENGTH = 11;
const EVENTS_END = 12;
const EVENTS_LENGTH = 13;
const REPLICA_HOURS = 14;
const SLOTS = 15;

export class KeptDecisions {
  private readonly slots: Float64Array;
  /** Every recommendation the trail recorded and every scale event, in order: a state's lists are a window. */
  private readonly recommendationAt: number[] = [];
  private readonly recommendationReplicas: number[] = [];
  private readonly eventAt: number[] = [];
  private readonly eventFrom: number[] = [];
  private readonly eventTo: number[] = [];
  /** Predictive: the fitted demand each kept decision read (a few hundred fits, shared). */
  private demand: Array<ObservedState["demand"]> | null = null;
  private readonly made: Array<Decision | null | undefined>;

  constructor(
    private readonly policy: ScalingPolicy,
    steps: number,
    /** The state's constants: the proxy's registration and the reconcile interval (fallback's clock). */
    private readonly context: { createdAt: number; reconcileIntervalMs: number },
  ) {
    this.slots = new Float64Array(steps * SLOTS).fill(Number.NaN);
    this.made = new Array(steps);
  }

  /** The trail recorded this recommendation (call in record order). */
  recordRecommendation(recommendation: RecommendationRecord): void {
    this.recommendationAt.push(recommendation.at);
    this.recommendationReplicas.push(recommendation.replicas);
  }

  /** A scale event, as the trail got it (call in record order). */
  recordScale(at: number, fromReplicas: number, toReplicas: number): void {
    this.eventAt.push(at);
    this.eventFrom.push(fromReplicas);
    this.eventTo.push(toReplicas);
  }

  /**
   * Step `step` keeps the decision made at `now` from `state` (the trail's, before the decision is recorded).
   * The simulator's state has one fleet-average sample at most, no caps and no scale in flight. A state field
   * the trail starts setting must be kept here too (simulate.test.ts compares every kept decision with the run's).
   */
  keep(step: number, now: number, state: ObservedState): void {
    const slots = this.slots;
    const base = step * SLOTS;
    slots[base + AT] = now;
    slots[base + CURRENT] = state.currentReplicas;
    slots[base + UNHEALTHY] = state.unhealthyReplicas;
    slots[base + LAST_SAMPLE_AT] = state.lastSampleAt ?? Number.NaN;
    const sample = state.samples[0];
    if (sample !== undefined) {
      slots[base + SAMPLE_AT] = sample.at;
      slots[base + CPU] = sample.cpuPercent;
      slots[base + MEMORY] = sample.memoryPercent;
      slots[base + REQUEST_RATE] = sample.requestRate;
      slots[base + LATENCY] = sample.avgLatencyMs;
      slots[base + ERROR_RATE] = sample.errorRatePercent;
    } else slots[base + SAMPLE_AT] = Number.NaN;
    slots[base + RECOMMENDATIONS_END] = this.recommendationAt.length;
    slots[base + RECOMMENDATIONS_LENGTH] = state.recommendations.length;
    slots[base + EVENTS_END] = this.eventAt.length;
    slots[base + EVENTS_LENGTH] = state.recentEvents.length;
    slots[base + REPLICA_HOURS] = state.replicaHoursThisMonth ?? Number.NaN;
    if (state.demand !== undefined) {
      this.demand ??= new Array(this.made.length);
      this.demand[step] = state.demand;
    }
  }

  /** The decision step `step` kept, made again on first read (then the same object), or null. */
  decisionOf(step: number): Decision | null {
    const made = this.made[step];
    if (made !== undefined) return made;
    const slots = this.slots;
    const base = step * SLOTS;
    const now = slots[base + AT]!;
    if (Number.isNaN(now)) {
      this.made[step] = null;
      return null;
    }
    const samples: MetricSample[] = [];
    if (!Number.isNaN(slots[base + SAMPLE_AT]!)) {
      samples.push({
        at: slots[base + SAMPLE_AT]!,
        cpuPercent: slots[base + CPU]!,
        memoryPercent: slots[base + MEMORY]!,
        requestRate: slots[base + REQUEST_RATE]!,
        avgLatencyMs: slots[base + LATENCY]!,
        errorRatePercent: slots[base + ERROR_RATE]!,
      });
    }
    const recommendations: RecommendationRecord[] = [];
    const recommendationsEnd = slots[base + RECOMMENDATIONS_END]!;
    for (let j = recommendationsEnd - slots[base + RECOMMENDATIONS_LENGTH]!; j < recommendationsEnd; j++)
      recommendations.push({ at: this.recommendationAt[j]!, replicas: this.recommendationReplicas[j]! });
    const recentEvents: ScaleEventRecord[] = [];
    const eventsEnd = slots[base + EVENTS_END]!;
    for (let j = eventsEnd - slots[base + EVENTS_LENGTH]!; j < eventsEnd; j++)
      recentEvents.push({
        at: this.eventAt[j]!,
        fromReplicas: this.eventFrom[j]!,
        toReplicas: this.eventTo[j]!,
      });
    const lastSampleAt = slots[base + LAST_SAMPLE_AT]!;
    const replicaHours = slots[base + REPLICA_HOURS]!;
    const state: ObservedState = {
      currentReplicas: slots[base + CURRENT]!,
      unhealthyReplicas: slots[base + UNHEALTHY]!,
      samples,
      recentEvents,
      recommendations,
      lastSampleAt: Number.isNaN(lastSampleAt) ? null : lastSampleAt,
      createdAt: this.context.createdAt,
      activeEvent: null,
      reconcileIntervalMs: this.context.reconcileIntervalMs,
    };
    if (!Number.isNaN(replicaHours)) state.replicaHoursThisMonth = replicaHours;
    const demand = this.demand?.[step];
    if (demand !== undefined) state.demand = demand;
    const decision = decide(this.policy, state, now);
    this.made[step] = decision;
    return decision;
  }
}
