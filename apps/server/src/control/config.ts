import { DEFAULT_RECONCILE_SECONDS } from "@proxyscale/core";
import { DEFAULT_RAW_RETENTION_DAYS, DEFAULT_ROLLUP_RETENTION_DAYS } from "@proxyscale/db";
import { z } from "zod";

export const DEFAULT_LEASE_SECONDS = 15;
export const DEFAULT_ACCEPTED_TIMEOUT_SECONDS = 900;
export const DEFAULT_RETENTION_INTERVAL_SECONDS = 3_600;

const seconds = (max: number, fallback: number) =>
  z.coerce
    .number({ message: "must be a number of seconds" })
    .gt(0, { message: "must be greater than 0" })
    .max(max, { message: `must be at most ${max}` })
    .default(fallback);

/** An empty value counts as unset (a blank line in an env file), not as 0. */
const blankAsUnset = (value: unknown) =>
  typeof value === "string" && value.trim() === "" ? undefined : value;

const optionalDays = z.preprocess(
  blankAsUnset,
  z.coerce
    .number({ message: "must be a number of days" })
    .gt(0, { message: "must be greater than 0" })
    .max(36_500, { message: "must be at most 36500" })
    .optional(),
);
const days = (fallback: number) => optionalDays.transform((value) => value ?? fallback);

const flag = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(["0", "1", "false", "true", "off", "on", "no", "yes", ""], { message: "must be 0 or 1" }))
  .optional()
  .transform((value) => value === undefined || value === "" || ["1", "true", "on", "yes"].includes(value));

/** The control loop's env vars, validated with the server's other settings (config.ts spreads these in). */
export const controlEnvFields = {
  /** Seconds between reconcile ticks (each evaluates every automatic proxy this server owns). */
  PROXYSCALE_RECONCILE_SECONDS: seconds(3_600, DEFAULT_RECONCILE_SECONDS),
  /** A server's ownership of its shards lasts this long without renewal; a dead server's work moves after it. */
  PROXYSCALE_LEASE_SECONDS: seconds(600, DEFAULT_LEASE_SECONDS),
  /** How long an event a webhook receiver accepted (202) may wait for its completion before it is reconciled. */
  PROXYSCALE_ACCEPTED_TIMEOUT_SECONDS: seconds(7 * 86_400, DEFAULT_ACCEPTED_TIMEOUT_SECONDS),
  /** Seconds between retention runs (rollup, then prune); 0 disables retention on this server. */
  PROXYSCALE_RETENTION_INTERVAL_SECONDS: z
    .preprocess(
      blankAsUnset,
      z.coerce
        .number({ message: "must be a number of seconds" })
        .min(0, { message: "must be 0 (off) or more" })
        .max(7 * 86_400, { message: `must be at most ${7 * 86_400}` })
        .optional(),
    )
    .transform((value) => value ?? DEFAULT_RETENTION_INTERVAL_SECONDS),
  /** Raw samples (and latest-sample rows) older than this many days are deleted, once rolled up. */
  PROXYSCALE_METRICS_RETENTION_DAYS: days(DEFAULT_RAW_RETENTION_DAYS),
  /** Per-minute rollups older than this many days are deleted. */
  PROXYSCALE_ROLLUP_RETENTION_DAYS: days(DEFAULT_ROLLUP_RETENTION_DAYS),
  /** Stored decisions older than this many days are deleted. Default: PROXYSCALE_METRICS_RETENTION_DAYS. */
  PROXYSCALE_DECISION_RETENTION_DAYS: optionalDays,
  /** `0` skips the demo proxy at start. */
  PROXYSCALE_DEMO: flag,
  /** The demo front's port (its upstream takes the next one). Default: PORT + 1, or a free port when PORT is 0. */
  PROXYSCALE_DEMO_PORT: z.coerce
    .number({ message: "must be a port number" })
    .int({ message: "must be a whole number" })
    .min(0, { message: "must be a port: 0 to 65534" })
    .max(65_534, { message: "must be a port: 0 to 65534" })
    .optional(),
};

export interface RetentionConfig {
  /** 0: retention does not run on this server. */
  intervalMs: number;
  rawRetentionDays: number;
  rollupRetentionDays: number;
  decisionRetentionDays: number;
}

export interface ControlConfig {
  reconcileIntervalMs: number;
  leaseTtlMs: number;
  acceptedTimeoutMs: number;
  retention: RetentionConfig;
  demo: { enabled: boolean; port: number | undefined };
}

type ControlEnv = z.output<z.ZodObject<typeof controlEnvFields>>;

export function controlConfigFrom(env: ControlEnv): ControlConfig {
  return {
    reconcileIntervalMs: Math.round(env.PROXYSCALE_RECONCILE_SECONDS * 1000),
    leaseTtlMs: Math.round(env.PROXYSCALE_LEASE_SECONDS * 1000),
    acceptedTimeoutMs: Math.round(env.PROXYSCALE_ACCEPTED_TIMEOUT_SECONDS * 1000),
    retention: {
      intervalMs: Math.round(env.PROXYSCALE_RETENTION_INTERVAL_SECONDS * 1000),
      rawRetentionDays: env.PROXYSCALE_METRICS_RETENTION_DAYS,
      rollupRetentionDays: env.PROXYSCALE_ROLLUP_RETENTION_DAYS,
      // As pruneMetrics does: decisions are kept as long as the raw samples they were decided from.
      decisionRetentionDays: env.PROXYSCALE_DECISION_RETENTION_DAYS ?? env.PROXYSCALE_METRICS_RETENTION_DAYS,
    },
    demo: { enabled: env.PROXYSCALE_DEMO, port: env.PROXYSCALE_DEMO_PORT },
  };
}
