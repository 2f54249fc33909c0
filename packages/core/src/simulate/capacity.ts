/**
 * The capacity model: how a replica behaves under load. Pluggable (any object with this shape), and stated in
 * every report through `description`.
 */

/** What one serving replica reports when offered `offeredRps` requests per second. */
export interface ReplicaReading {
  cpuPercent: number;
  memoryPercent: number;
  /** Offered requests per second (what the proxy counts, failed ones included). */
  requestRate: number;
  avgLatencyMs: number;
  errorRatePercent: number;
}

export interface CapacityModel {
  /** One line, stated in every report: the model and its numbers. */
  readonly description: string;
  /** Requests per second one serving replica completes at saturation. */
  readonly perReplicaRps: number;
  /** The readings of one serving replica offered `offeredRps` (≥ 0). */
  reading(offeredRps: number): ReplicaReading;
  /**
   * The demand in resource units: the fewest serving replicas that keep the SLO at `rps` in total (0 for no
   * load). The elasticity metrics and the oracle use it.
   */
  requiredReplicas(rps: number): number;
  /** Whether a reading breaks the SLO (latency over its target, or errors). */
  violatesSlo(reading: ReplicaReading): boolean;
}

export interface LinearCapacityOptions {
  /** Requests per second one replica completes at saturation (μ). */
  perReplicaRps: number;
  /** CPU of an idle replica, percent. Default 5. */
  baseCpuPercent?: number;
  /** Memory of an idle replica, percent. Default 30. */
  baseMemoryPercent?: number;
  /** Memory per request per second being served, percent. Default 20 / perReplicaRps (20 points at saturation). */
  memoryPercentPerRps?: number;
  /** Service time of one request on an idle replica (M/M/1's 1/μ as the client sees it), ms. Default 20. */
  serviceMs?: number;
  /** Latency cap (a saturated replica's time-out), ms. Default 100 × serviceMs. */
  maxLatencyMs?: number;
  /** The latency SLO, ms. Default 5 × serviceMs (which holds up to 80% utilisation). */
  sloLatencyMs?: number;
  /** Error rate above which a step violates the SLO, percent. Default 0 (any error). */
  sloErrorRatePercent?: number;
}

/** A request's service time on an idle replica when the model is not told it, ms. */
export const DEFAULT_SERVICE_MS = 20;

/**
 * The default model, per serving replica offered λ req/s with capacity μ (ρ = λ/μ):
 * - CPU = base + (100 − base) · min(ρ, 1) percent;
 * - memory = min(100, base + perRps · min(λ, μ)) percent;
 * - latency = service / (1 − ρ) (M/M/1), at most maxLatency; at ρ ≥ 1 it is maxLatency;
 * - errors = max(0, λ − μ) / λ · 100 percent: once saturated, the excess demand's share fails.
 * Demand in replicas = ⌈total / (μ · ρ_slo)⌉ with ρ_slo = 1 − service / sloLatency, the highest utilisation
 * whose latency meets the SLO.
 */
export function linearCapacityModel(options: LinearCapacityOptions): CapacityModel {
  const mu = options.perReplicaRps;
  if (!(mu > 0) || !Number.isFinite(mu)) throw new RangeError("perReplicaRps: must be a finite number > 0");
  const baseCpu = options.baseCpuPercent ?? 5;
  const baseMemory = options.baseMemoryPercent ?? 30;
  const memoryPerRps = options.memoryPercentPerRps ?? 20 / mu;
  const serviceMs = options.serviceMs ?? DEFAULT_SERVICE_MS;
  const maxLatencyMs = options.maxLatencyMs ?? 100 * serviceMs;
  const sloLatencyMs = options.sloLatencyMs ?? 5 * serviceMs;
  const sloErrors = options.sloErrorRatePercent ?? 0;
  if (!(sloLatencyMs > serviceMs)) throw new RangeError("sloLatencyMs: must be above serviceMs");
  const sloUtilization = 1 - serviceMs / sloLatencyMs;
  const description =
    `linear capacity: ${mu} req/s per replica; cpu ${baseCpu}% + ${100 - baseCpu}%·ρ; ` +
    `memory ${baseMemory}% + ${Number(memoryPerRps.toPrecision(4))}%/(req/s); ` +
    `latency ${serviceMs} ms/(1−ρ) capped at ${maxLatencyMs} ms; errors = excess share past saturation; ` +
    `SLO latency ≤ ${sloLatencyMs} ms (ρ ≤ ${Number(sloUtilization.toPrecision(4))}) and errors ≤ ${sloErrors}%`;
  return {
    description,
    perReplicaRps: mu,
    reading(offeredRps) {
      const lambda = Math.max(0, offeredRps);
      const rho = lambda / mu;
      const served = Math.min(lambda, mu);
      return {
        cpuPercent: baseCpu + (100 - baseCpu) * Math.min(rho, 1),
        memoryPercent: Math.min(100, baseMemory + memoryPerRps * served),
        requestRate: lambda,
        avgLatencyMs: rho >= 1 ? maxLatencyMs : Math.min(maxLatencyMs, serviceMs / (1 - rho)),
        errorRatePercent: lambda > mu ? ((lambda - mu) / lambda) * 100 : 0,
      };
    },
    requiredReplicas(rps) {
      if (!(rps > 0)) return 0;
      // A hair of slack so 400 / (100 · 0.8) is 5, not 6 from rounding; then up until the SLO holds, so the
      // count and `violatesSlo` agree by construction.
      let replicas = Math.max(1, Math.ceil(rps / (mu * sloUtilization) - 1e-9));
      while (this.violatesSlo(this.reading(rps / replicas))) replicas++;
      return replicas;
    },
    violatesSlo(reading) {
      // A relative hair of slack: 20 / (1 − 0.8) is 100.00000000000001 in floating point.
      return reading.avgLatencyMs > sloLatencyMs * (1 + 1e-9) || reading.errorRatePercent > sloErrors;
    },
  };
}
