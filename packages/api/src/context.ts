import {
  DEFAULT_MAX_CLOCK_SKEW_SECONDS,
  DEFAULT_RECONCILE_SECONDS,
  type MetricsSourceHealth,
  type RunSimulationInput,
  runSimulation,
  type SimulationReport,
  type Tier,
} from "@proxyscale/core";
import { type Db, type Logger, MAX_BATCH_ROWS, type ScalingExecutor, type Telemetry } from "@proxyscale/db";
import { type AuthConfig, createTokenVerifier, type TokenVerifier, type VerifiedToken } from "./auth.ts";
import { createEvaluator, type Evaluator } from "./evaluation.ts";
import { FairShare } from "./fair-share.ts";
import { createSampleRecorder, type SampleRecorder } from "./ingest.ts";
import { combineTelemetry, createLiveFeed, type LiveFeed } from "./live-feed.ts";
import { createRateLimiter, type RateLimiter } from "./rate-limit.ts";

/** Everything the procedures touch, injected by whoever assembles the API (server, test, benchmark). */
export interface ApiDeps {
  db: Db;
  clock: () => number;
  logger: Logger;
  executor: ScalingExecutor;
  auth: AuthConfig;
  telemetry?: Telemetry;
  /**
   * What `live.onChange` serves; it hears the API's own hooks (with `telemetry`), and whatever else the
   * assembler hands its `telemetry` (the control loop). Default: one of its own, local to this process.
   */
  live?: LiveFeed;
  /** Told after samples are stored (the control loop evaluates those proxies). Must not throw or block. */
  onMetricsRecorded?: (proxyIds: readonly string[]) => void;
  /** Requests per minute by tier; defaults to core's TIER_LIMITS. */
  requestsPerMinute?: Partial<Record<Tier, number>>;
  /** Most milliseconds between sharing rate-limit counts with the other servers (default 1,000). */
  rateLimitSyncMs?: number;
  /** The control loop's reconcile interval, which evaluate's fallback counts in (default core's). */
  reconcileIntervalMs?: number;
  /** How far ahead of `clock` a sample's recordedAt may be (default core's DEFAULT_MAX_CLOCK_SKEW_SECONDS). */
  maxClockSkewSeconds?: number;
  /** A scraped proxy's last scrapes, known to the server that scrapes it (default: none known). */
  sourceHealth?: (proxyId: string) => MetricsSourceHealth | null;
  /** Runs a simulation (default: core's runSimulation in this thread; the server passes a worker pool). */
  simulate?: (input: RunSimulationInput) => Promise<SimulationReport>;
}

/** What one request sees. `user` is set by `protectedProcedure` once the token is verified. */
export interface Context {
  db: Db;
  clock: () => number;
  logger: Logger;
  executor: ScalingExecutor;
  telemetry: Telemetry;
  live: LiveFeed;
  onMetricsRecorded: (proxyIds: readonly string[]) => void;
  verifyToken: TokenVerifier;
  rateLimiter: RateLimiter;
  /** `scaling.evaluate`, batched with the requests evaluating at the same time. */
  evaluate: Evaluator;
  /** Metrics pushes, batched with the pushes arriving at the same time. */
  recordSamples: SampleRecorder;
  /** The clock-skew allowance for samples' recordedAt, in seconds. */
  maxClockSkewSeconds: number;
  sourceHealth: (proxyId: string) => MetricsSourceHealth | null;
  simulate: (input: RunSimulationInput) => Promise<SimulationReport>;
  /** Per-user admission of heavy work (a batch's samples), one per server. */
  heavyWork: FairShare;
  /** The raw Authorization header; verified lazily so public procedures never fail on a bad token. */
  authorization: string | undefined;
  user?: VerifiedToken;
}

export interface RequestInfo {
  authorization?: string | undefined;
}

/** Builds each request's context; `close()` stops its background work (the rate limiter's sharing). */
export type ContextFactory = ((request: RequestInfo) => Context) & { close(): void };

/** Builds the per-request context factory. The verifier, rate limiter and evaluator live as long as the factory. */
export function createContext(deps: ApiDeps): ContextFactory {
  const verifyToken = createTokenVerifier(deps.auth, deps.clock);
  const rateLimiter = createRateLimiter({
    clock: deps.clock,
    requestsPerMinute: deps.requestsPerMinute ?? {},
    shared: { db: deps.db, logger: deps.logger, syncIntervalMs: deps.rateLimitSyncMs },
  });
  const ownLive = deps.live ? null : createLiveFeed({ db: deps.db, logger: deps.logger, clock: deps.clock });
  const live = deps.live ?? (ownLive as LiveFeed);
  const telemetry = combineTelemetry(deps.telemetry ?? {}, live.telemetry);
  const onMetricsRecorded = deps.onMetricsRecorded ?? (() => {});
  const evaluate = createEvaluator({
    db: deps.db,
    clock: deps.clock,
    telemetry,
    reconcileIntervalMs: deps.reconcileIntervalMs ?? DEFAULT_RECONCILE_SECONDS * 1000,
  });
  const recordSamples = createSampleRecorder({
    db: deps.db,
    clock: deps.clock,
    telemetry,
    onMetricsRecorded,
  });
  const simulate = deps.simulate ?? (async (input: RunSimulationInput) => runSimulation(input));
  // One user's requests process at most a full batch's worth of samples at once.
  const heavyWork = new FairShare(MAX_BATCH_ROWS);
  const factory = (request: RequestInfo): Context => ({
    db: deps.db,
    clock: deps.clock,
    logger: deps.logger,
    executor: deps.executor,
    telemetry,
    live,
    onMetricsRecorded,
    verifyToken,
    rateLimiter,
    evaluate,
    recordSamples,
    maxClockSkewSeconds: deps.maxClockSkewSeconds ?? DEFAULT_MAX_CLOCK_SKEW_SECONDS,
    sourceHealth: deps.sourceHealth ?? (() => null),
    simulate,
    heavyWork,
    authorization: request.authorization,
  });
  return Object.assign(factory, {
    close: () => {
      rateLimiter.close();
      void ownLive?.close();
    },
  });
}
