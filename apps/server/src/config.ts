import { DEFAULT_DATA_DIR, DEFAULT_MAX_CLOCK_SKEW_SECONDS } from "@proxyscale/core";
import { MEMORY_DATA_DIR } from "@proxyscale/db";
import { z } from "zod";
import { type ControlConfig, controlConfigFrom, controlEnvFields } from "./control/config.ts";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
/** What the demo proxy's replicas run: the built-in Node worker, or real HAProxy or nginx processes. */
export const DEMO_PROXY_KINDS = ["worker", "haproxy", "nginx"] as const;
export type DemoProxyKind = (typeof DEMO_PROXY_KINDS)[number];

export const DEFAULT_QUERY_TIMEOUT_SECONDS = 5;
export const DEFAULT_SHUTDOWN_TIMEOUT_SECONDS = 10;
export const DEFAULT_REQUEST_TIMEOUT_SECONDS = 10;

/** A positive number of seconds up to `max`; empty counts as unset. */
const deadlineSeconds = (max: number, fallback: number) =>
  z.preprocess(
    (value) => (typeof value === "string" && value.trim() === "" ? undefined : value),
    z.coerce
      .number({ message: "must be a number of seconds" })
      .gt(0, { message: "must be greater than 0" })
      .max(max, { message: `must be at most ${max}` })
      .default(fallback),
  );

const optionalText = z
  .string()
  .transform((value) => value.trim())
  .pipe(z.string())
  .optional()
  .transform((value) => (value ? value : undefined));

/** Every env var the server reads, validated at start. Empty values count as unset. */
export const envSchema = z
  .object({
    PORT: z.coerce
      .number({ message: "must be a port number" })
      .int({ message: "must be a whole number" })
      .min(0, { message: "must be a port: 0 to 65535" })
      .max(65_535, { message: "must be a port: 0 to 65535" })
      .default(8080),
    HOST: z.string().min(1).default("127.0.0.1"),
    DATABASE_URL: optionalText.pipe(
      z
        .url({ protocol: /^postgres(ql)?$/, message: "must be a postgres:// or postgresql:// URL" })
        .optional(),
    ),
    PROXYSCALE_DATA_DIR: z.string().min(1).default(DEFAULT_DATA_DIR),
    PROXYSCALE_JWT_SECRET: optionalText.pipe(
      z
        .string()
        .min(32, { message: "must be at least 32 characters (HS256 needs a 256-bit key)" })
        .optional(),
    ),
    PROXYSCALE_JWKS_URL: optionalText.pipe(
      z.url({ protocol: /^https?$/, message: "must be an http:// or https:// URL" }).optional(),
    ),
    PROXYSCALE_JWT_ISSUER: optionalText,
    PROXYSCALE_JWT_AUDIENCE: optionalText,
    /** Tokens whose lifetime (exp − iat) is longer are refused (401). Unset: any lifetime. */
    PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS: z.preprocess(
      (value) => (typeof value === "string" && value.trim() === "" ? undefined : value),
      z.coerce
        .number({ message: "must be a number of seconds" })
        .int({ message: "must be a whole number of seconds" })
        .min(60, { message: "must be at least 60" })
        .max(10 * 365 * 86_400, { message: "must be at most 315360000 (ten years)" })
        .optional(),
    ),
    PROXYSCALE_MAX_BODY_BYTES: z.coerce
      .number({ message: "must be a number of bytes" })
      .int({ message: "must be a whole number of bytes" })
      .min(1_024, { message: "must be at least 1024" })
      .max(64 * 1024 * 1024, { message: "must be at most 67108864 (64 MiB)" })
      .default(4 * 1024 * 1024),
    PROXYSCALE_PUBLIC_URL: optionalText.pipe(z.url({ message: "must be a URL" }).optional()),
    /** A static bearer token a Prometheus scraper may show at /metrics (an admin JWT works too). */
    PROXYSCALE_METRICS_TOKEN: optionalText.pipe(
      z.string().min(16, { message: "must be at least 16 characters" }).optional(),
    ),
    /** 1: /metrics needs no token (it lists every tenant's proxies: only for a private network). Default 0. */
    PROXYSCALE_METRICS_PUBLIC: z
      .string()
      .trim()
      .toLowerCase()
      .pipe(z.enum(["0", "1", "false", "true", ""], { message: "must be 0 or 1" }))
      .optional()
      .transform((value) => value === "1" || value === "true"),
    /** `haproxy` or `nginx`: demo-edge's replicas are real HAProxy or nginx processes. Default: the Node worker. */
    PROXYSCALE_DEMO_PROXY: z.preprocess(
      (value) => (typeof value === "string" && value.trim() === "" ? undefined : value),
      z
        .enum(DEMO_PROXY_KINDS, { message: `must be one of ${DEMO_PROXY_KINDS.join(", ")}` })
        .default("worker"),
    ),
    LOG_LEVEL: z.enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(", ")}` }).default("info"),
    /** Every PostgreSQL statement's deadline (statement_timeout and a client-side one); past it, 503. */
    PROXYSCALE_QUERY_TIMEOUT_SECONDS: deadlineSeconds(600, DEFAULT_QUERY_TIMEOUT_SECONDS),
    /** How long a request's headers and body may take to arrive; past it, 408 and the connection is closed. */
    PROXYSCALE_REQUEST_TIMEOUT_SECONDS: deadlineSeconds(600, DEFAULT_REQUEST_TIMEOUT_SECONDS),
    /** How long a graceful stop (SIGTERM, SIGINT) may take before the process exits anyway. */
    PROXYSCALE_SHUTDOWN_TIMEOUT_SECONDS: deadlineSeconds(3_600, DEFAULT_SHUTDOWN_TIMEOUT_SECONDS),
    /** How far ahead of this server's clock a sample's recordedAt may be; further is a 400. */
    PROXYSCALE_MAX_CLOCK_SKEW_SECONDS: z.preprocess(
      (value) => (typeof value === "string" && value.trim() === "" ? undefined : value),
      z.coerce
        .number({ message: "must be a number of seconds" })
        .int({ message: "must be a whole number of seconds" })
        .min(0, { message: "must not be negative" })
        .max(86_400, { message: "must be at most 86400 (a day)" })
        .default(DEFAULT_MAX_CLOCK_SKEW_SECONDS),
    ),
    ...controlEnvFields,
  })
  .loose()
  .superRefine((env, ctx) => {
    // An in-memory install has nowhere to keep a generated secret: tokens would die with the process.
    if (
      env.PROXYSCALE_DATA_DIR === MEMORY_DATA_DIR &&
      !env.PROXYSCALE_JWT_SECRET &&
      !env.PROXYSCALE_JWKS_URL
    ) {
      ctx.addIssue({
        code: "custom",
        path: ["PROXYSCALE_JWT_SECRET"],
        message: `is required when PROXYSCALE_DATA_DIR is ${MEMORY_DATA_DIR} (or set PROXYSCALE_JWKS_URL)`,
      });
    }
    // Ranges read rolled-up minutes from the rollups only: rollups pruned before the raw samples leave a gap.
    if (env.PROXYSCALE_ROLLUP_RETENTION_DAYS < env.PROXYSCALE_METRICS_RETENTION_DAYS) {
      ctx.addIssue({
        code: "custom",
        path: ["PROXYSCALE_ROLLUP_RETENTION_DAYS"],
        message: `must be at least PROXYSCALE_METRICS_RETENTION_DAYS (${env.PROXYSCALE_METRICS_RETENTION_DAYS})`,
      });
    }
  });

export interface ServerConfig {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  dataDir: string;
  jwtSecret: string | undefined;
  jwksUrl: string | undefined;
  jwtIssuer: string | undefined;
  jwtAudience: string | undefined;
  /** PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS: longest accepted exp − iat. */
  maxTokenLifetimeSeconds: number | undefined;
  maxBodyBytes: number;
  publicUrl: string | undefined;
  /** PROXYSCALE_METRICS_TOKEN and PROXYSCALE_METRICS_PUBLIC: who may scrape /metrics. */
  metrics: { token: string | undefined; public: boolean };
  logLevel: (typeof LOG_LEVELS)[number];
  /** PROXYSCALE_QUERY_TIMEOUT_SECONDS in ms. */
  queryTimeoutMs: number;
  /** PROXYSCALE_SHUTDOWN_TIMEOUT_SECONDS in ms. */
  shutdownTimeoutMs: number;
  /** PROXYSCALE_MAX_CLOCK_SKEW_SECONDS: how far ahead of the clock a sample's recordedAt may be. */
  maxClockSkewSeconds: number;
  /** PROXYSCALE_REQUEST_TIMEOUT_SECONDS in ms. */
  requestTimeoutMs: number;
  /** The control loop and the demo (PROXYSCALE_RECONCILE_SECONDS, _LEASE_SECONDS, _DEMO, …). */
  control: ControlConfig;
  /** PROXYSCALE_DEMO_PROXY: what demo-edge's replicas run. */
  demoProxy: DemoProxyKind;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Reads the config from env; throws ConfigError naming every bad variable, its rule, and never its value. */
export function loadConfig(env: Record<string, string | undefined>): ServerConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  const value = parsed.data;
  return {
    port: value.PORT,
    host: value.HOST,
    databaseUrl: value.DATABASE_URL,
    dataDir: value.PROXYSCALE_DATA_DIR,
    jwtSecret: value.PROXYSCALE_JWT_SECRET,
    jwksUrl: value.PROXYSCALE_JWKS_URL,
    jwtIssuer: value.PROXYSCALE_JWT_ISSUER,
    jwtAudience: value.PROXYSCALE_JWT_AUDIENCE,
    maxTokenLifetimeSeconds: value.PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS,
    maxBodyBytes: value.PROXYSCALE_MAX_BODY_BYTES,
    publicUrl: value.PROXYSCALE_PUBLIC_URL,
    metrics: { token: value.PROXYSCALE_METRICS_TOKEN, public: value.PROXYSCALE_METRICS_PUBLIC },
    logLevel: value.LOG_LEVEL,
    queryTimeoutMs: Math.round(value.PROXYSCALE_QUERY_TIMEOUT_SECONDS * 1000),
    shutdownTimeoutMs: Math.round(value.PROXYSCALE_SHUTDOWN_TIMEOUT_SECONDS * 1000),
    maxClockSkewSeconds: value.PROXYSCALE_MAX_CLOCK_SKEW_SECONDS,
    requestTimeoutMs: Math.round(value.PROXYSCALE_REQUEST_TIMEOUT_SECONDS * 1000),
    control: controlConfigFrom(value),
    demoProxy: value.PROXYSCALE_DEMO_PROXY,
  };
}
