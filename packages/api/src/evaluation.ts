import { type Decision, decide, type ScalingTrigger } from "@proxyscale/core";
import {
  type Db,
  loadObservedStates,
  type ObservedProxy,
  type PolicySource,
  recordDecisions,
  type Telemetry,
} from "@proxyscale/db";
import { notFound } from "./errors.ts";
import { type Waiting as GroupWaiting, groupCommit } from "./group-commit.ts";

/** Evaluation reads at least this much history (loadObservedStates reads further for policies that need it). */
const EVALUATION_HISTORY_SECONDS = 3_600;
/** Latest samples one evaluation batch reads at most (more only for a single proxy that has more). */
const EVALUATION_BATCH_WEIGHT = 1_000;
/** Proxies whose cost is remembered; past it the memory starts again. */
const COST_MEMORY = 100_000;

export interface EvaluationRequest {
  proxyId: string;
  /** Only this owner's proxy may be evaluated (undefined: any, for admins); anything else is 404. */
  ownerId: string | undefined;
  /** Replicas managed outside ProxyScale: the engine starts from this count instead of the stored one. */
  currentReplicas?: number | undefined;
  triggeredBy: Extract<ScalingTrigger, "manual" | "admin">;
}

export type EvaluationResult = Decision & { decisionId: string; proxyId: string; policySource: PolicySource };

export type Evaluator = (request: EvaluationRequest) => Promise<EvaluationResult>;

interface EvaluatorDeps {
  db: Db;
  clock: () => number;
  telemetry: Telemetry;
  /** The control loop's reconcile interval: fallback counts missed intervals of it, here as in the loop. */
  reconcileIntervalMs: number;
}

/**
 * Runs `scaling.evaluate`: the decision the control loop would record for the proxy's state now (core's
 * `decide`, every limit included: fallback, a scale in flight, the mode), stored, and never acted on.
 * With group commit (groupCommit): the requests that arrive while earlier ones are at the database
 * share one read of their proxies' state (loadObservedStates) and one insert of their decisions. Each is answered
 * only once its decision is stored, so nothing is acknowledged that could be lost. Idle, a request starts its own
 * batch at once (no timer); under load, batches grow and round trips per request fall. Batches are shared
 * round-robin between owners (admins share one lane), so one owner's thousand queued evaluations delay another
 * owner's by a share of one batch, not by the thousand.
 */
export function createEvaluator(deps: EvaluatorDeps): Evaluator {
  const cost = new Map<string, number>();
  return groupCommit((batch) => evaluateBatch(deps, batch, cost), {
    laneOf: (request) => request.ownerId ?? "",
    // A proxy costs what its state cost last time (one per latest sample): a heavy proxy fills a batch alone.
    weightOf: (request) => cost.get(request.proxyId) ?? 1,
    maxWeight: EVALUATION_BATCH_WEIGHT,
  });
}

type Waiting = GroupWaiting<EvaluationRequest, EvaluationResult>;

async function evaluateBatch(
  deps: EvaluatorDeps,
  batch: readonly Waiting[],
  cost: Map<string, number>,
): Promise<void> {
  const now = deps.clock();
  const proxyIds = [...new Set(batch.map((waiting) => waiting.request.proxyId))];
  const observed = await loadObservedStates(deps.db, {
    proxyIds,
    now,
    historySeconds: EVALUATION_HISTORY_SECONDS,
    reconcileIntervalMs: deps.reconcileIntervalMs,
  });

  if (cost.size > COST_MEMORY) cost.clear();
  for (const [proxyId, entry] of observed) cost.set(proxyId, Math.max(1, entry.state.samples.length));
  const decided: Array<{ waiting: Waiting; entry: ObservedProxy; decision: Decision }> = [];
  for (const waiting of batch) {
    const { proxyId, ownerId, currentReplicas } = waiting.request;
    const entry = observed.get(proxyId);
    if (!entry || (ownerId !== undefined && entry.proxy.ownerId !== ownerId)) {
      waiting.reject(notFound("proxy", proxyId));
      continue;
    }
    // state.caps already holds the owner's tier cap (loadObservedStates), whoever evaluates.
    const state = currentReplicas === undefined ? entry.state : { ...entry.state, currentReplicas };
    decided.push({ waiting, entry, decision: decide(entry.policy, state, now) });
  }
  if (decided.length === 0) return;

  const ids = await recordDecisions(
    deps.db,
    decided.map(({ waiting, decision }) => ({
      proxyId: waiting.request.proxyId,
      decision,
      triggeredBy: waiting.request.triggeredBy,
    })),
  );
  decided.forEach(({ waiting, entry, decision }, index) => {
    const decisionId = ids[index];
    // Null: the proxy was deleted between the read and the write.
    if (!decisionId) {
      waiting.reject(notFound("proxy", entry.proxy.id));
      return;
    }
    deps.telemetry.decisionMade?.(entry.proxy, decision, {
      id: decisionId,
      triggeredBy: waiting.request.triggeredBy,
    });
    waiting.resolve({ ...decision, decisionId, proxyId: entry.proxy.id, policySource: entry.policySource });
  });
}
