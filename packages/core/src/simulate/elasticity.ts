/**
 * The SPEC Research Group's elasticity metrics (Herbst et al., "Quantifying Cloud Performance and
 * Dependability", ACM TOMPECS 2018; the BUNGEE benchmark's code), over step series of demand and supply in
 * resource units (replicas). Each step lasts `stepSeconds`; both curves are constant within a step.
 * Formulas, the two forms, and a worked example of each: docs/simulator.md.
 */

export interface ElasticitySeries {
  stepSeconds: number;
  /** Resource units needed per step (the fewest replicas that keep the SLO). */
  demand: readonly number[];
  /** Resource units serving per step. */
  supply: readonly number[];
  /** Replicas paid for per step (serving + warming + draining). Default: `supply`. */
  billed?: readonly number[];
  /** Whether each step broke the SLO. Default: none did. */
  sloViolated?: readonly boolean[];
  /** Scaling actions taken. Default: the steps where `supply` changed. */
  scalingActions?: number;
}

/** The unnormalised forms: resource units × time, or time, or a count. */
export interface UnnormalizedElasticity {
  /** Σ max(d − s, 0) · Δt, replica-hours (BUNGEE's code divides this area by T: mean replicas short). */
  underProvisioningReplicaHours: number;
  overProvisioningReplicaHours: number;
  /** Σ [s < d] · Δt, minutes. */
  underProvisionedMinutes: number;
  overProvisionedMinutes: number;
  /** Σ min(|sgn Δs − sgn Δd|, 1) · Δt over steps 2…n, minutes. */
  instabilityMinutes: number;
  /** E_S − E_D: supply adaptations minus demand changes. */
  jitterAdaptations: number;
}

/** The normalised forms (percent where a share) and the totals. */
export interface ElasticityMetrics {
  /** θ_U = 100/T · Σ max(d − s, 0) / max(d, 1) · Δt: how short supply was, relative to demand, on average (%). */
  underProvisioningAccuracy: number;
  /** θ_O = 100/T · Σ max(s − d, 0) / max(d, 1) · Δt (%). */
  overProvisioningAccuracy: number;
  /** τ_U = 100/T · Σ [s < d] · Δt: share of time under-provisioned (%). */
  underProvisioningTimeshare: number;
  /** τ_O = 100/T · Σ [s > d] · Δt (%). */
  overProvisioningTimeshare: number;
  /** υ = 100/(T − Δt) · Σ_{t≥2} min(|sgn Δs_t − sgn Δd_t|, 1) · Δt: share of time supply and demand moved apart (%). */
  instability: number;
  /** j = (E_S − E_D) / T, adaptations per hour: > 0 supply oscillates, < 0 it lags behind demand's changes. */
  jitter: number;
  scalingActions: number;
  /** Σ billed · Δt / 3600. */
  replicaHours: number;
  /** Σ [violated] · Δt / 60. */
  sloViolationMinutes: number;
  /** T / 60. */
  durationMinutes: number;
  unnormalized: UnnormalizedElasticity;
}

/** Tolerance for "supply equals demand" (time-weighted supply is a float). */
const EPSILON = 1e-9;

function changes(series: readonly number[]): number {
  let count = 0;
  for (let i = 1; i < series.length; i++) if (Math.abs(series[i]! - series[i - 1]!) > EPSILON) count++;
  return count;
}

function sign(delta: number): number {
  return delta > EPSILON ? 1 : delta < -EPSILON ? -1 : 0;
}

/** The elasticity metrics of a demand/supply pair of step series (same length). */
export function elasticityMetrics(series: ElasticitySeries): ElasticityMetrics {
  const { stepSeconds, demand, supply } = series;
  const n = demand.length;
  if (supply.length !== n) throw new RangeError("supply: must have one value per demand step");
  if (series.billed !== undefined && series.billed.length !== n)
    throw new RangeError("billed: must have one value per demand step");
  if (series.sloViolated !== undefined && series.sloViolated.length !== n)
    throw new RangeError("sloViolated: must have one value per demand step");
  if (!(stepSeconds > 0)) throw new RangeError("stepSeconds: must be > 0");
  const billed = series.billed ?? supply;
  const dt = stepSeconds;
  const T = n * dt;

  let underRelative = 0;
  let overRelative = 0;
  let underArea = 0;
  let overArea = 0;
  let underTime = 0;
  let overTime = 0;
  let unstableTime = 0;
  let billedArea = 0;
  let violatedTime = 0;
  for (let i = 0; i < n; i++) {
    const d = demand[i]!;
    const s = supply[i]!;
    const gap = s - d;
    if (gap < -EPSILON) {
      underRelative += (-gap / Math.max(d, 1)) * dt;
      underArea += -gap * dt;
      underTime += dt;
    } else if (gap > EPSILON) {
      overRelative += (gap / Math.max(d, 1)) * dt;
      overArea += gap * dt;
      overTime += dt;
    }
    if (i > 0) {
      const moved = Math.abs(sign(s - supply[i - 1]!) - sign(d - demand[i - 1]!));
      unstableTime += Math.min(moved, 1) * dt;
    }
    billedArea += billed[i]! * dt;
    if (series.sloViolated?.[i]) violatedTime += dt;
  }
  const adaptations = changes(supply) - changes(demand);
  const share = (x: number) => (T > 0 ? (100 * x) / T : 0);
  return {
    underProvisioningAccuracy: share(underRelative),
    overProvisioningAccuracy: share(overRelative),
    underProvisioningTimeshare: share(underTime),
    overProvisioningTimeshare: share(overTime),
    instability: n > 1 ? (100 * unstableTime) / (T - dt) : 0,
    jitter: T > 0 ? (adaptations * 3600) / T : 0,
    scalingActions: series.scalingActions ?? changes(supply),
    replicaHours: billedArea / 3600,
    sloViolationMinutes: violatedTime / 60,
    durationMinutes: T / 60,
    unnormalized: {
      underProvisioningReplicaHours: underArea / 3600,
      overProvisioningReplicaHours: overArea / 3600,
      underProvisionedMinutes: underTime / 60,
      overProvisionedMinutes: overTime / 60,
      instabilityMinutes: unstableTime / 60,
      jitterAdaptations: adaptations,
    },
  };
}
