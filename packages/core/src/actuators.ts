import { z } from "zod";
import { replicaTemplateSchema } from "./replica-templates.ts";
import { storable, storableText } from "./storable.ts";

/**
 * Actuator configs: how a proxy's replicas are changed. The API validates a proxy's config with
 * `actuatorConfigSchema`; the server builds the actuator from the parsed value. Kinds are a
 * discriminated union on `kind`.
 */
export const ACTUATOR_KINDS = ["none", "local", "kubernetes", "webhook", "command"] as const;
export type ActuatorKind = (typeof ACTUATOR_KINDS)[number];

const httpUrl = storable(
  z.url({
    protocol: /^https?$/,
    error: "must be an http:// or https:// URL",
  }),
);
const milliseconds = (max: number) =>
  z
    .number()
    .int({ message: "must be a whole number of milliseconds" })
    .min(0, { message: "must not be negative" })
    .max(max, { message: `must be at most ${max} ms` });
const positiveMilliseconds = (max: number) => milliseconds(max).min(1, { message: "must be at least 1 ms" });
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
  message: "must be an environment variable name: a letter or _, then letters, digits or _",
});

/** Records the requested count and does nothing: for proxies whose replicas are managed elsewhere. */
export const noneActuatorConfigSchema = z.strictObject({
  kind: z.literal("none"),
});

/** Reporting of the local workers' own metrics to ProxyScale. */
const localReportingSchema = z.strictObject({
  enabled: z.boolean().default(true),
  intervalMs: positiveMilliseconds(300_000).default(5_000),
  /** ProxyScale's base URL; the server's own URL when absent. */
  url: httpUrl.optional(),
  /** Bearer token for the metrics push; the server mints one when absent. A secret: redacted on output. */
  token: storableText().min(1).optional(),
});

/** Real proxy processes on this machine, behind one front listener. */
export const localActuatorConfigSchema = z.strictObject({
  kind: z.literal("local"),
  /** Where every replica forwards requests. */
  upstreamUrl: httpUrl,
  /** The front listener: the one address clients use. Port 0 picks a free port. */
  listenHost: storableText().min(1).default("127.0.0.1"),
  listenPort: z
    .number()
    .int({ message: "must be an integer" })
    .min(0, { message: "must be a port: 0 to 65535" })
    .max(65_535, { message: "must be a port: 0 to 65535" })
    .default(0),
  balance: z.enum(["leastConnections", "roundRobin"]).default("leastConnections"),
  /** A replica that has not reported ready by then is killed and the scale fails. */
  readyTimeoutMs: positiveMilliseconds(300_000).default(20_000),
  /** Longest wait for a draining replica's in-flight requests before it is killed. */
  drainTimeoutMs: positiveMilliseconds(600_000).default(30_000),
  /** Delay before a crashed replica is replaced; doubles on each crash of the same slot. */
  restartDelayMs: milliseconds(60_000).default(1_000),
  maxRestartDelayMs: milliseconds(600_000).default(30_000),
  /**
   * Kubernetes' liveness probe, for a replica that hangs rather than exits: every `periodMs` each ready replica's
   * health path is asked; after `failureThreshold` answers in a row that fail or take over `timeoutMs`, the
   * replica is killed and replaced like a crashed one.
   */
  livenessProbe: z
    .strictObject({
      periodMs: positiveMilliseconds(300_000).default(5_000),
      timeoutMs: positiveMilliseconds(60_000).default(2_000),
      failureThreshold: z
        .number()
        .int({ message: "must be a whole number" })
        .min(1, { message: "must be at least 1" })
        .max(100, { message: "must be at most 100" })
        .default(3),
    })
    .prefault({}),
  reporting: localReportingSchema.prefault({}),
  /**
   * Scale to zero (docs/metrics-sources.md): while no replica is in the rotation, the front holds up to
   * `maxRequests` requests for at most `timeoutMs` each, asks the control loop for a replica at once, and sends
   * them on when the first is ready. A request past either bound is answered 503 at once.
   */
  coldStartQueue: z
    .strictObject({
      maxRequests: z
        .number()
        .int({ message: "must be a whole number" })
        .min(0, { message: "must not be negative" })
        .max(100_000, { message: "must be at most 100000" })
        .default(1_000),
      timeoutMs: positiveMilliseconds(600_000).default(30_000),
    })
    .prefault({}),
  /** What each replica runs: the Node worker, a built-in HAProxy or nginx template, or a custom one. */
  replica: replicaTemplateSchema.default({ template: "worker" }),
});

const dns1123Label = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, {
  message: "must be a DNS-1123 label: lowercase letters, digits and -, at most 63 characters",
});
/** Service names: a DNS-1035 label. */
const dns1035Label = z.string().regex(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/, {
  message:
    "must be a DNS-1035 label: a lowercase letter, then lowercase letters, digits and -, at most 63 characters",
});
const dns1123Subdomain = z
  .string()
  .max(253, { message: "must be at most 253 characters" })
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, {
    message: "must be a DNS-1123 subdomain: lowercase letters, digits, - and .",
  });

export const kubernetesCredentialsSchema = z.discriminatedUnion("source", [
  /** The pod's service account: KUBERNETES_SERVICE_HOST/PORT and the mounted token, CA and namespace. */
  z.strictObject({
    source: z.literal("inCluster"),
    serviceAccountDir: storableText().min(1).default("/var/run/secrets/kubernetes.io/serviceaccount"),
    /** Overrides https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT. */
    apiServerUrl: httpUrl.optional(),
  }),
  /** A kubeconfig file: $KUBECONFIG (its first path) or ~/.kube/config when `path` is absent. */
  z.strictObject({
    source: z.literal("kubeconfig"),
    path: storableText().min(1).optional(),
    /** The kubeconfig's current-context when absent. */
    context: storableText().min(1).optional(),
  }),
]);
export type KubernetesCredentials = z.output<typeof kubernetesCredentialsSchema>;

/** The `scale` subresource of a Deployment or StatefulSet. */
export const kubernetesActuatorConfigSchema = z.strictObject({
  kind: z.literal("kubernetes"),
  workload: z.enum(["deployment", "statefulset"]).default("deployment"),
  name: dns1123Subdomain,
  /** The credentials' namespace (service account or kubeconfig context), else `default`, when absent. */
  namespace: dns1123Label.optional(),
  credentials: kubernetesCredentialsSchema.prefault({ source: "inCluster" }),
  /** The Service whose EndpointSlices list the ready replicas' addresses (for scraping); `name` when absent. */
  service: dns1035Label.optional(),
  requestTimeoutMs: positiveMilliseconds(120_000).default(10_000),
  /** A 409 Conflict (someone else changed the scale) is retried with a fresh GET this many times. */
  conflictRetries: z.number().int().min(0).max(20).default(5),
  /** After the PATCH, wait up to this long for status.replicas to reach the new count (0: do not wait). */
  waitForReplicasMs: milliseconds(600_000).default(60_000),
  pollIntervalMs: positiveMilliseconds(60_000).default(1_000),
});

const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, { message: "must be an HTTP header name" });
const RESERVED_WEBHOOK_HEADERS = ["content-type", "content-length", "host"];

/** POSTs a signed JSON body to a URL; the receiver scales and answers, now (200) or later (202). */
export const webhookActuatorConfigSchema = z.strictObject({
  kind: z.literal("webhook"),
  url: httpUrl,
  /** HMAC-SHA256 key for X-ProxyScale-Signature. A secret: redacted on output. */
  secret: storableText().min(16, { message: "must be at least 16 characters" }),
  /** Per attempt. */
  timeoutMs: positiveMilliseconds(120_000).default(10_000),
  /** Attempts in all, the first included. Network errors, timeouts, 408, 429 and 5xx are retried. */
  maxAttempts: z.number().int().min(1).max(10).default(4),
  initialBackoffMs: milliseconds(60_000).default(500),
  maxBackoffMs: milliseconds(300_000).default(10_000),
  /** Extra request headers, e.g. an Authorization the receiver needs. Values are redacted on output. */
  headers: z
    .record(headerName, storableText())
    .superRefine((headers, ctx) => {
      for (const name of Object.keys(headers)) {
        if (RESERVED_WEBHOOK_HEADERS.includes(name.toLowerCase()) || /^x-proxyscale-/i.test(name)) {
          ctx.addIssue({
            code: "custom",
            path: [name],
            message:
              "must not be Content-Type, Content-Length, Host or X-ProxyScale-*: ProxyScale sets those",
          });
        }
      }
    })
    .default({}),
  /** Optional: GET it for the observed count, answered `{ replicas, readyReplicas?, unhealthyReplicas? }`. */
  statusUrl: httpUrl.optional(),
});

/** Placeholders substituted in a command's arguments. Everything else is passed literally. */
export const COMMAND_PLACEHOLDERS = ["{replicas}", "{fromReplicas}", "{proxyId}", "{eventId}"] as const;

const argv = z
  .array(storableText("multiline").max(4096), {
    message: "must be an argv array: the program, then its arguments",
  })
  .min(1, { message: "must name the program to run" })
  .max(256)
  .refine((args) => (args[0] ?? "").length > 0, { message: "must start with a non-empty program name" });

/** Runs a program (no shell) with the replica count as an argument. For VMs, HAProxy or nginx fleets. */
export const commandActuatorConfigSchema = z.strictObject({
  kind: z.literal("command"),
  /** argv: the program, then its arguments. One argument must contain `{replicas}`. */
  command: argv.refine((args) => args.slice(1).some((arg) => arg.includes("{replicas}")), {
    message: "must pass {replicas} in an argument",
  }),
  /** Optional argv whose stdout is the observed count (an integer). No placeholders. */
  getReplicasCommand: argv.optional(),
  timeoutMs: positiveMilliseconds(3_600_000).default(60_000),
  /** After the timeout, SIGTERM goes to the process group; SIGKILL follows after this grace. */
  killGraceMs: milliseconds(60_000).default(5_000),
  cwd: storableText().min(1).optional(),
  /** Added to the small inherited environment (PATH, HOME, LANG, ...). Values are redacted on output. */
  env: z.record(envName, storableText("multiline")).default({}),
});

export const actuatorConfigSchema = z.discriminatedUnion("kind", [
  noneActuatorConfigSchema,
  localActuatorConfigSchema,
  kubernetesActuatorConfigSchema,
  webhookActuatorConfigSchema,
  commandActuatorConfigSchema,
]);
export type ActuatorConfig = z.output<typeof actuatorConfigSchema>;
export type ActuatorConfigInput = z.input<typeof actuatorConfigSchema>;
export type NoneActuatorConfig = z.output<typeof noneActuatorConfigSchema>;
export type LocalActuatorConfig = z.output<typeof localActuatorConfigSchema>;
export type KubernetesActuatorConfig = z.output<typeof kubernetesActuatorConfigSchema>;
export type WebhookActuatorConfig = z.output<typeof webhookActuatorConfigSchema>;
export type CommandActuatorConfig = z.output<typeof commandActuatorConfigSchema>;

export const DEFAULT_ACTUATOR_CONFIG: ActuatorConfig = { kind: "none" };

export function parseActuatorConfig(input: unknown): ActuatorConfig {
  return actuatorConfigSchema.parse(input);
}

export const REDACTED = "[redacted]";

const redacted = z.literal(REDACTED);

/**
 * An actuator config as API responses show it (redactActuatorConfig's result): the same schemas, with every
 * secret value replaced by REDACTED.
 */
export const redactedActuatorConfigSchema = z
  .discriminatedUnion("kind", [
    noneActuatorConfigSchema,
    localActuatorConfigSchema.extend({
      reporting: localReportingSchema.extend({ token: redacted.optional() }).prefault({}),
    }),
    kubernetesActuatorConfigSchema,
    webhookActuatorConfigSchema.extend({
      secret: redacted,
      headers: z.record(headerName, redacted).default({}),
    }),
    commandActuatorConfigSchema.extend({ env: z.record(envName, redacted).default({}) }),
  ])
  .meta({ id: "RedactedActuatorConfig" });
export type RedactedActuatorConfig = z.output<typeof redactedActuatorConfigSchema>;

/** A copy fit for API responses and logs: every secret value replaced. */
export function redactActuatorConfig(config: ActuatorConfig): RedactedActuatorConfig {
  const redactValues = (record: Record<string, string>) =>
    Object.fromEntries(Object.keys(record).map((key) => [key, REDACTED] as const));
  switch (config.kind) {
    case "webhook":
      return { ...config, secret: REDACTED, headers: redactValues(config.headers) };
    case "command":
      return { ...config, env: redactValues(config.env) };
    case "local": {
      const { token, ...reporting } = config.reporting;
      return { ...config, reporting: token === undefined ? reporting : { ...reporting, token: REDACTED } };
    }
    default:
      return config;
  }
}

/**
 * Delay before retry number `attempt` (1 for the first retry): `initialMs · factor^(attempt−1)`, capped at
 * `maxMs`, less up to `jitter` of itself. `random` is injected so callers and tests control it.
 */
export function exponentialBackoffMs(
  attempt: number,
  options: { initialMs: number; maxMs: number; factor?: number; jitter?: number },
  random: () => number = Math.random,
): number {
  const factor = options.factor ?? 2;
  const jitter = options.jitter ?? 0;
  const base = Math.min(options.maxMs, options.initialMs * factor ** Math.max(0, attempt - 1));
  return Math.round(base * (1 - jitter * random()));
}
