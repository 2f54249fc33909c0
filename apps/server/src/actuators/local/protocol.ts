import { z } from "zod";

/** The environment variable that carries a worker's config (JSON). Env, not argv: argv is world-readable. */
export const WORKER_CONFIG_ENV = "PROXYSCALE_WORKER_CONFIG";

/** The path a worker answers itself instead of forwarding. */
export const WORKER_HEALTH_PATH = "/__proxyscale/healthz";

/** The response header naming the replica that served a request. */
export const INSTANCE_HEADER = "x-proxyscale-instance";

export const workerConfigSchema = z.strictObject({
  upstreamUrl: z.url({ protocol: /^https?$/ }),
  host: z.string().min(1).default("127.0.0.1"),
  port: z.number().int().min(0).max(65_535).default(0),
  instanceId: z.string().min(1),
  drainTimeoutMs: z.number().int().positive().default(30_000),
  upstreamTimeoutMs: z.number().int().positive().default(30_000),
  reporting: z
    .strictObject({
      url: z.string().min(1),
      token: z.string().min(1),
      proxyId: z.string().min(1),
      intervalMs: z.number().int().positive(),
    })
    .optional(),
});
export type WorkerConfig = z.output<typeof workerConfigSchema>;
export type WorkerConfigInput = z.input<typeof workerConfigSchema>;

/** What a worker sends its parent over IPC once it listens. */
export interface WorkerReadyMessage {
  type: "ready";
  port: number;
  instanceId: string;
}

export function isWorkerReadyMessage(message: unknown): message is WorkerReadyMessage {
  const candidate = message as Partial<WorkerReadyMessage> | null;
  return candidate?.type === "ready" && typeof candidate.port === "number";
}
