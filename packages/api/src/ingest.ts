import {
  computeLoadScore,
  type LoadMetrics,
  liveInstanceCapFor,
  liveInstanceCapMessage,
  liveInstanceWindowMs,
  type MetricSample,
  type Tier,
} from "@proxyscale/core";
import {
  type Db,
  getEffectivePolicies,
  type InstanceCap,
  insertCappedSamples,
  NotFoundError,
  type SampleInput,
  setObservedReplicas,
  type Telemetry,
} from "@proxyscale/db";
import { TRPCError } from "@trpc/server";
import { notFound } from "./errors.ts";
import { type Waiting as GroupWaiting, groupCommit } from "./group-commit.ts";
import type { RecordedSample } from "./outputs.ts";

export interface IngestRequest {
  proxyId: string;
  /** Only this owner's proxy may take samples (undefined: any, for admins); anything else is 404. */
  ownerId: string | undefined;
  reports: LoadMetrics[];
}

export type { RecordedSample } from "./outputs.ts";

export type SampleRecorder = (request: IngestRequest) => Promise<RecordedSample[]>;

interface RecorderDeps {
  db: Db;
  clock: () => number;
  telemetry: Telemetry;
  onMetricsRecorded: (proxyIds: readonly string[]) => void;
}

type Waiting = GroupWaiting<IngestRequest, RecordedSample[]>;

function toSample(metrics: LoadMetrics, receivedAt: number): MetricSample {
  const at =
    metrics.recordedAt === undefined
      ? receivedAt
      : typeof metrics.recordedAt === "number"
        ? metrics.recordedAt
        : Date.parse(metrics.recordedAt);
  return {
    instanceId: metrics.instanceId,
    at,
    cpuPercent: metrics.cpuPercent,
    memoryPercent: metrics.memoryPercent,
    requestRate: metrics.requestRate,
    avgLatencyMs: metrics.avgLatencyMs,
    errorRatePercent: metrics.errorRatePercent,
    custom: metrics.custom,
  };
}

/**
 * Stores pushed samples with group commit (groupCommit): the pushes that arrive while earlier ones are at the
 * database share one read of their proxies' owners and policies (each sample is scored with its proxy's
 * policy) and one insert of all their samples. A batch is shared fairly between owners (round-robin, and a
 * sample budget; admins share one lane), so one owner's flood of large pushes fills its own batches, not
 * everyone's. Each push is
 * answered only once its samples are stored, and the control loop hears of the batch's proxies once. The
 * latest reported replica count updates its proxy.
 *
 * The live instance cap (core's liveInstanceCapFor of the owner's tier; an instance is live for
 * liveInstanceWindowMs of the proxy's policy after its latest sample): a push that would take its proxy past
 * it is refused whole with 409 CONFLICT naming the cap, and nothing of it is stored (insertCappedSamples).
 */
export function createSampleRecorder(deps: RecorderDeps): SampleRecorder {
  return groupCommit((batch) => recordBatch(deps, batch), {
    laneOf: (request) => request.ownerId ?? "",
    weightOf: (request) => request.reports.length,
  });
}

type Accepted = { waiting: Waiting; rows: SampleInput[] };

async function recordBatch(deps: RecorderDeps, batch: readonly Waiting[]): Promise<void> {
  const receivedAt = deps.clock();
  const targets = await getEffectivePolicies(deps.db, {
    proxyIds: [...new Set(batch.map((waiting) => waiting.request.proxyId))],
  });
  const accepted: Accepted[] = [];
  const caps = new Map<string, InstanceCap & { tier: Tier; windowMs: number }>();
  for (const waiting of batch) {
    const { proxyId, ownerId, reports } = waiting.request;
    const target = targets.get(proxyId);
    if (!target || (ownerId !== undefined && target.ownerId !== ownerId)) {
      waiting.reject(notFound("proxy", proxyId));
      continue;
    }
    const windowMs = liveInstanceWindowMs(target.policy);
    caps.set(proxyId, {
      cap: liveInstanceCapFor(target.ownerTier),
      liveSince: receivedAt - windowMs,
      tier: target.ownerTier,
      windowMs,
    });
    const rows = reports.map((metrics) => ({
      proxyId,
      sample: toSample(metrics, receivedAt),
      loadScore: computeLoadScore(metrics, target.policy),
      replicas: metrics.replicas,
      unhealthyReplicas: metrics.unhealthyReplicas,
    }));
    accepted.push({ waiting, rows });
  }
  if (accepted.length === 0) return;

  /** Stores the pushes under their caps; refused ones are answered 409 here, the stored ones returned. */
  const insert = async (pushes: readonly Accepted[]): Promise<Accepted[]> => {
    const admissions = await insertCappedSamples(deps.db, {
      pushes: pushes.map(({ waiting, rows }) => ({ proxyId: waiting.request.proxyId, rows })),
      caps,
    });
    return pushes.filter(({ waiting }, index) => {
      const admission = admissions[index]!;
      if (admission.admitted) return true;
      const cap = caps.get(waiting.request.proxyId)!;
      waiting.reject(
        new TRPCError({
          code: "CONFLICT",
          message: liveInstanceCapMessage({ tier: cap.tier, refusal: admission, windowMs: cap.windowMs }),
        }),
      );
      return false;
    });
  };

  let stored: Accepted[];
  try {
    stored = await insert(accepted);
  } catch (error) {
    // A proxy deleted since the read fails the whole statement: store each push on its own instead.
    if (!(error instanceof NotFoundError) || accepted.length === 1) throw error;
    const each = await Promise.all(
      accepted.map((push) =>
        insert([push]).catch((cause: unknown) => {
          push.waiting.reject(cause);
          return [];
        }),
      ),
    );
    stored = each.flat();
  }
  await store(stored);

  async function store(pushes: readonly Accepted[]): Promise<void> {
    if (pushes.length === 0) return;
    const reported = new Map<string, number>();
    for (const { waiting } of pushes) {
      const replicas = waiting.request.reports.findLast(
        (metrics) => metrics.replicas !== undefined,
      )?.replicas;
      if (replicas !== undefined) reported.set(waiting.request.proxyId, replicas);
    }
    await Promise.all(
      [...reported].map(([id, currentReplicas]) => setObservedReplicas(deps.db, { id, currentReplicas })),
    );
    const proxyIds = new Set<string>();
    for (const { waiting, rows } of pushes) {
      const last = rows.at(-1);
      if (last) deps.telemetry.sampleRecorded?.(waiting.request.proxyId, last.loadScore);
      proxyIds.add(waiting.request.proxyId);
      waiting.resolve(rows.map((row) => ({ sample: row.sample, loadScore: row.loadScore })));
    }
    deps.onMetricsRecorded([...proxyIds]);
  }
}
