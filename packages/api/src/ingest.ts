import { computeLoadScore, type LoadMetrics, type MetricSample } from "@proxyscale/core";
import {
  type Db,
  getEffectivePolicies,
  insertSamples,
  NotFoundError,
  type SampleInput,
  setObservedReplicas,
  type Telemetry,
} from "@proxyscale/db";
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
 * policy) and one insert of all their samples. Each push is answered only once its samples are stored, and the
 * control loop hears of the batch's proxies once. The latest reported replica count updates its proxy.
 */
export function createSampleRecorder(deps: RecorderDeps): SampleRecorder {
  return groupCommit((batch) => recordBatch(deps, batch));
}

async function recordBatch(deps: RecorderDeps, batch: readonly Waiting[]): Promise<void> {
  const receivedAt = deps.clock();
  const targets = await getEffectivePolicies(deps.db, {
    proxyIds: [...new Set(batch.map((waiting) => waiting.request.proxyId))],
  });
  const accepted: Array<{ waiting: Waiting; rows: SampleInput[] }> = [];
  for (const waiting of batch) {
    const { proxyId, ownerId, reports } = waiting.request;
    const target = targets.get(proxyId);
    if (!target || (ownerId !== undefined && target.ownerId !== ownerId)) {
      waiting.reject(notFound("proxy", proxyId));
      continue;
    }
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
  try {
    await insertSamples(
      deps.db,
      accepted.flatMap(({ rows }) => rows),
    );
  } catch (error) {
    // A proxy deleted since the read fails the whole statement: store each push on its own instead.
    if (!(error instanceof NotFoundError) || accepted.length === 1) throw error;
    await Promise.all(
      accepted.map(({ waiting, rows }) =>
        insertSamples(deps.db, rows).then(
          () => store([{ waiting, rows }]),
          (cause: unknown) => waiting.reject(cause),
        ),
      ),
    );
    return;
  }
  await store(accepted);

  async function store(stored: typeof accepted): Promise<void> {
    const reported = new Map<string, number>();
    for (const { waiting } of stored) {
      const replicas = waiting.request.reports.findLast(
        (metrics) => metrics.replicas !== undefined,
      )?.replicas;
      if (replicas !== undefined) reported.set(waiting.request.proxyId, replicas);
    }
    await Promise.all(
      [...reported].map(([id, currentReplicas]) => setObservedReplicas(deps.db, { id, currentReplicas })),
    );
    const proxyIds = new Set<string>();
    for (const { waiting, rows } of stored) {
      const last = rows.at(-1);
      if (last) deps.telemetry.sampleRecorded?.(waiting.request.proxyId, last.loadScore);
      proxyIds.add(waiting.request.proxyId);
      waiting.resolve(rows.map((row) => ({ sample: row.sample, loadScore: row.loadScore })));
    }
    deps.onMetricsRecorded([...proxyIds]);
  }
}
