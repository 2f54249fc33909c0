import { z } from "zod";
import { storableText } from "./storable.ts";

/**
 * What a `local` proxy's replicas are: ProxyScale's own Node worker (the default), a built-in template for a real
 * proxy (HAProxy, nginx), or any program (`custom`). A template is a command, a config file written per replica,
 * a readiness probe and a graceful stop; the actuator fills the placeholders for each replica.
 */
export const REPLICA_TEMPLATE_KINDS = ["worker", "haproxy", "nginx", "custom"] as const;

/** Placeholders filled per replica in a template's command, exporter command and config text. */
export const REPLICA_PLACEHOLDERS = [
  /** The port the replica takes traffic on (the front forwards there). */
  "{port}",
  /** A second free port, for the replica's stats or exporter endpoint. */
  "{metricsPort}",
  /** A third free port, for the exporter sidecar's endpoint. */
  "{exporterPort}",
  /** The replica's instance id. */
  "{instance}",
  /** The path of the config file written from `configTemplate`. */
  "{configFile}",
  /** The replica's own directory (config, pid file, logs, temp files); removed when it stops. */
  "{dir}",
  /** The proxy's upstream (the actuator's `upstreamUrl`), whole and in parts. */
  "{upstreamUrl}",
  "{upstreamHost}",
  "{upstreamPort}",
] as const;
export type ReplicaPlaceholder = (typeof REPLICA_PLACEHOLDERS)[number];
export type ReplicaPlaceholderValues = Record<ReplicaPlaceholder, string>;

/** The path both built-in templates answer themselves, as the Node worker does: probes never reach the upstream. */
export const REPLICA_HEALTH_PATH = "/__proxyscale/healthz";

const PLACEHOLDER_PATTERN = /\{[A-Za-z][A-Za-z0-9]*\}/g;

const milliseconds = (min: number, max: number) =>
  z
    .number()
    .int({ message: "must be a whole number of milliseconds" })
    .min(min, { message: `must be at least ${min} ms` })
    .max(max, { message: `must be at most ${max} ms` });

const urlPath = storableText()
  .max(1_000, { message: "must be at most 1000 characters" })
  .regex(/^\/\S*$/, { message: "must be a path starting with / (no spaces)" });

const argv = z
  .array(storableText("multiline").max(4_096, { message: "must be at most 4096 characters" }), {
    message: "must be an argv array: the program, then its arguments",
  })
  .min(1, { message: "must name the program to run" })
  .max(256, { message: "must have at most 256 arguments" })
  .refine((args) => (args[0] ?? "").length > 0, { message: "must start with a non-empty program name" });

/** A program path for a built-in template, when it is not the one on PATH. */
const programPath = storableText()
  .min(1, { message: "must not be empty" })
  .max(4_096, { message: "must be at most 4096 characters" });

/** Which of the replica's ports a probe or metrics endpoint is on. */
const replicaPort = z.enum(["port", "metricsPort", "exporterPort"], {
  message: "must be port, metricsPort or exporterPort",
});

export const replicaReadinessSchema = z
  .strictObject({
    /** `http`: a GET of `path` answers 2xx or 3xx; `tcp`: the port accepts a connection. */
    kind: z.enum(["http", "tcp"], { message: "must be http or tcp" }).default("http"),
    path: urlPath.default("/"),
    port: replicaPort.default("port"),
    /** Per attempt. */
    timeoutMs: milliseconds(1, 60_000).default(1_000),
    /** Between attempts, until ready or the actuator's readyTimeoutMs. */
    periodMs: milliseconds(10, 60_000).default(100),
  })
  .prefault({});

export const STOP_SIGNALS = ["SIGTERM", "SIGQUIT", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2"] as const;

export const replicaStopSchema = z
  .strictObject({
    /** Sent once the front has drained the replica; SIGKILL (to its process group) follows after `timeoutMs`. */
    signal: z.enum(STOP_SIGNALS, { message: `must be one of ${STOP_SIGNALS.join(", ")}` }).default("SIGTERM"),
    timeoutMs: milliseconds(1, 600_000).default(10_000),
  })
  .prefault({});

const metricsEndpointSchema = z.strictObject({
  port: replicaPort.default("metricsPort"),
  path: urlPath.default("/metrics"),
});

const configTemplate = storableText("multiline").max(65_536, { message: "must be at most 65536 characters" });

/** Any program as a replica. */
export const customReplicaTemplateSchema = z
  .strictObject({
    template: z.literal("custom"),
    /** argv (no shell): the program, then its arguments, with placeholders. */
    command: argv,
    /** Written to `{configFile}` for each replica, with placeholders filled. */
    configTemplate: configTemplate.optional(),
    /** The config file's name in the replica's directory. */
    configFileName: storableText()
      .regex(/^[A-Za-z0-9._-]{1,100}$/, {
        message: "must be a file name: 1 to 100 letters, digits, ., _ or -",
      })
      .default("replica.conf"),
    readiness: replicaReadinessSchema,
    stop: replicaStopSchema,
    /** The replica's Prometheus endpoint, for the `scrape` metric source (Actuator.targets). */
    metrics: metricsEndpointSchema.optional(),
    /** A sidecar started once the replica is ready and stopped with it, e.g. an exporter on `{exporterPort}`. */
    exporter: z.strictObject({ command: argv }).optional(),
  })
  .superRefine((template, ctx) => {
    const known = new Set<string>(REPLICA_PLACEHOLDERS);
    const check = (text: string, path: Array<string | number>) => {
      for (const found of text.match(PLACEHOLDER_PATTERN) ?? []) {
        if (!known.has(found)) {
          ctx.addIssue({
            code: "custom",
            path,
            message: `has an unknown placeholder ${found}: use ${REPLICA_PLACEHOLDERS.join(", ")}`,
          });
        }
      }
    };
    for (const [index, arg] of template.command.entries()) check(arg, ["command", index]);
    for (const [index, arg] of (template.exporter?.command ?? []).entries()) {
      check(arg, ["exporter", "command", index]);
    }
    if (template.configTemplate !== undefined) check(template.configTemplate, ["configTemplate"]);
    const uses = (placeholder: ReplicaPlaceholder) =>
      template.command.some((arg) => arg.includes(placeholder)) ||
      (template.configTemplate ?? "").includes(placeholder);
    if (!uses("{port}")) {
      ctx.addIssue({
        code: "custom",
        path: ["command"],
        message: "must pass {port} in an argument or in configTemplate: the front forwards to it",
      });
    }
    if (
      template.configTemplate !== undefined &&
      !template.command.some((arg) => arg.includes("{configFile}"))
    ) {
      ctx.addIssue({
        code: "custom",
        path: ["command"],
        message: "must pass {configFile} in an argument: configTemplate is written there",
      });
    }
    if (
      template.configTemplate === undefined &&
      template.command.some((arg) => arg.includes("{configFile}"))
    ) {
      ctx.addIssue({
        code: "custom",
        path: ["configTemplate"],
        message: "is required when the command passes {configFile}",
      });
    }
    const portsInUse = [template.readiness.port, template.metrics?.port].filter(Boolean);
    if (portsInUse.includes("exporterPort") && !template.exporter) {
      ctx.addIssue({
        code: "custom",
        path: template.metrics?.port === "exporterPort" ? ["metrics", "port"] : ["readiness", "port"],
        message: "is exporterPort, which only an exporter listens on: add exporter.command",
      });
    }
  });

export const replicaTemplateSchema = z.discriminatedUnion(
  "template",
  [
    /** ProxyScale's own Node worker: reports its metrics by push (the `reporting` settings). */
    z.strictObject({ template: z.literal("worker") }),
    /** HAProxy: forwards to the upstream; its built-in Prometheus exporter answers /metrics on `{metricsPort}`. */
    z.strictObject({
      template: z.literal("haproxy"),
      command: programPath.default("haproxy"),
      stopTimeoutMs: milliseconds(1, 600_000).default(10_000),
      /** HAProxy's global maxconn; absent, HAProxy derives it from the open-file limit. */
      maxConnections: z
        .number()
        .int({ message: "must be a whole number" })
        .min(1, { message: "must be at least 1" })
        .max(1_000_000, { message: "must be at most 1000000" })
        .optional(),
    }),
    /**
     * nginx: forwards to the upstream, `stub_status` on `{metricsPort}`; `prometheus-nginx-exporter` (a sidecar
     * per replica, unless `exporter` is false) turns it into /metrics on `{exporterPort}`.
     */
    z.strictObject({
      template: z.literal("nginx"),
      command: programPath.default("nginx"),
      exporter: z.boolean().default(true),
      exporterCommand: programPath.default("prometheus-nginx-exporter"),
      stopTimeoutMs: milliseconds(1, 600_000).default(10_000),
      workerConnections: z
        .number()
        .int({ message: "must be a whole number" })
        .min(16, { message: "must be at least 16" })
        .max(1_000_000, { message: "must be at most 1000000" })
        .default(4_096),
    }),
    customReplicaTemplateSchema,
  ],
  { error: `must have template ${REPLICA_TEMPLATE_KINDS.join(", ")}` },
);
export type ReplicaTemplateConfig = z.output<typeof replicaTemplateSchema>;
export type CustomReplicaTemplate = z.output<typeof customReplicaTemplateSchema>;

/** A template as the actuator runs it: every built-in expanded to the custom form. */
export type ResolvedReplicaTemplate = Omit<CustomReplicaTemplate, "template">;

interface Upstream {
  protocol: "http:" | "https:";
  host: string;
  port: string;
  /** The URL's path without its trailing slash: a prefix for every request path. */
  basePath: string;
  /** host:port as a Host header carries it. */
  hostHeader: string;
}

function parseUpstream(upstreamUrl: string): Upstream {
  const url = new URL(upstreamUrl);
  const protocol = url.protocol === "https:" ? "https:" : "http:";
  const port = url.port || (protocol === "https:" ? "443" : "80");
  return {
    protocol,
    host: url.hostname,
    port,
    basePath: url.pathname.replace(/\/$/, ""),
    hostHeader: url.host,
  };
}

/** The placeholders of one replica. */
export function replicaPlaceholderValues(input: {
  upstreamUrl: string;
  instance: string;
  dir: string;
  configFile: string;
  port: number;
  metricsPort: number;
  exporterPort: number;
}): ReplicaPlaceholderValues {
  const upstream = parseUpstream(input.upstreamUrl);
  return {
    "{port}": String(input.port),
    "{metricsPort}": String(input.metricsPort),
    "{exporterPort}": String(input.exporterPort),
    "{instance}": input.instance,
    "{configFile}": input.configFile,
    "{dir}": input.dir,
    "{upstreamUrl}": input.upstreamUrl,
    "{upstreamHost}": upstream.host,
    "{upstreamPort}": upstream.port,
  };
}

/** Fills every placeholder in `text`; anything else stays as written. */
export function fillReplicaPlaceholders(text: string, values: ReplicaPlaceholderValues): string {
  return text.replace(PLACEHOLDER_PATTERN, (found) =>
    found in values ? values[found as ReplicaPlaceholder] : found,
  );
}

function haproxyConfig(upstream: Upstream, maxConnections: number | undefined): string {
  const tls =
    upstream.protocol === "https:" ? ` ssl verify required ca-file @system-ca sni str(${upstream.host})` : "";
  const basePath = upstream.basePath ? `\n  http-request set-path ${upstream.basePath}%[path]` : "";
  return `# Written by ProxyScale for replica {instance}.
global${maxConnections === undefined ? "" : `\n  maxconn ${maxConnections}`}

defaults
  mode http
  timeout connect 5s
  timeout client 65s
  timeout server 60s
  # Longer than the front's 30 s idle socket timeout: the front always closes an idle connection first.
  timeout http-keep-alive 65s

frontend proxy
  bind 127.0.0.1:{port}
  option forwardfor
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  http-request set-header Host ${upstream.hostHeader}${basePath}
  http-response set-header x-proxyscale-instance {instance}
  default_backend upstream

backend upstream
  server upstream ${upstream.host.includes(":") ? `[${upstream.host}]` : upstream.host}:${upstream.port}${tls}

# Probes are answered here, so the proxy frontend's counters hold client requests only.
frontend metrics
  bind 127.0.0.1:{metricsPort}
  monitor-uri ${REPLICA_HEALTH_PATH}
  http-request use-service prometheus-exporter if { path /metrics }
  http-request return status 404
`;
}

function nginxConfig(upstream: Upstream, workerConnections: number): string {
  const server = upstream.host.includes(":")
    ? `[${upstream.host}]:${upstream.port}`
    : `${upstream.host}:${upstream.port}`;
  const scheme = upstream.protocol === "https:" ? "https" : "http";
  // With a URI part, nginx sends it as written: $request_uri keeps the client's path and query after the prefix.
  const target = upstream.basePath
    ? `${scheme}://proxyscale_upstream${upstream.basePath}$request_uri`
    : `${scheme}://proxyscale_upstream`;
  const tls =
    upstream.protocol === "https:"
      ? `
      proxy_ssl_server_name on;
      proxy_ssl_name ${upstream.host};
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;`
      : "";
  return `# Written by ProxyScale for replica {instance}. Every path is in the replica's own directory: no root needed.
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;

events {
  worker_connections ${workerConnections};
}

http {
  access_log off;
  client_body_temp_path {dir}/client_body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  # Longer than the front's 30 s idle socket timeout, and no request cap: the front always closes first.
  keepalive_timeout 65s;
  keepalive_requests 1000000;

  upstream proxyscale_upstream {
    server ${server};
    keepalive 64;
  }

  server {
    listen 127.0.0.1:{port};
    location = ${REPLICA_HEALTH_PATH} {
      return 200 "ok\\n";
    }
    location / {
      proxy_pass ${target};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host ${upstream.hostHeader};
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      add_header x-proxyscale-instance {instance} always;${tls}
    }
  }

  server {
    listen 127.0.0.1:{metricsPort};
    location = /stub_status {
      stub_status;
    }
  }
}
`;
}

/**
 * The template the actuator runs for a proxy: a built-in expanded for its upstream (the parts that are the same
 * for every replica are written in; the per-replica placeholders stay), or the custom one as given. `undefined`
 * for the Node worker, which is not a template.
 */
export function resolveReplicaTemplate(
  template: ReplicaTemplateConfig,
  upstreamUrl: string,
): ResolvedReplicaTemplate | undefined {
  switch (template.template) {
    case "worker":
      return undefined;
    case "haproxy":
      return {
        // -db: stay in the foreground, logging to stderr; the actuator owns the process.
        command: [template.command, "-db", "-f", "{configFile}"],
        configTemplate: haproxyConfig(parseUpstream(upstreamUrl), template.maxConnections),
        configFileName: "haproxy.cfg",
        readiness: {
          kind: "http",
          path: REPLICA_HEALTH_PATH,
          port: "metricsPort",
          timeoutMs: 1_000,
          periodMs: 50,
        },
        // SIGUSR1 is HAProxy's soft stop: it stops listening and lets open connections finish.
        stop: { signal: "SIGUSR1", timeoutMs: template.stopTimeoutMs },
        metrics: { port: "metricsPort", path: "/metrics" },
      };
    case "nginx":
      return {
        // -p: the replica's directory is nginx's prefix; -e: the startup error log too, before the config is read.
        command: [
          template.command,
          "-p",
          "{dir}",
          "-c",
          "{configFile}",
          "-e",
          "{dir}/error.log",
          "-g",
          "daemon off;",
        ],
        configTemplate: nginxConfig(parseUpstream(upstreamUrl), template.workerConnections),
        configFileName: "nginx.conf",
        readiness: { kind: "http", path: REPLICA_HEALTH_PATH, port: "port", timeoutMs: 1_000, periodMs: 50 },
        // SIGQUIT is nginx's graceful shutdown: open requests finish, idle keep-alive connections close.
        stop: { signal: "SIGQUIT", timeoutMs: template.stopTimeoutMs },
        ...(template.exporter
          ? {
              metrics: { port: "exporterPort", path: "/metrics" } as const,
              exporter: {
                command: [
                  template.exporterCommand,
                  "-nginx.scrape-uri",
                  "http://127.0.0.1:{metricsPort}/stub_status",
                  "-web.listen-address",
                  "127.0.0.1:{exporterPort}",
                ],
              },
            }
          : {}),
      };
    case "custom": {
      const { template: _kind, ...resolved } = template;
      return resolved;
    }
  }
}
