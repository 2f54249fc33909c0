import { createHmac, timingSafeEqual } from "node:crypto";
import { exponentialBackoffMs, type WebhookActuatorConfig } from "@proxyscale/core";
import { z } from "zod";
import type {
  Actuator,
  ActuatorDeps,
  ReplicaCounts,
  SetReplicasContext,
  SetReplicasResult,
} from "./types.ts";
import { ActuatorError, assertReplicaCount, errorMessage, sleep, throwIfAborted } from "./types.ts";

export const SIGNATURE_HEADER = "X-ProxyScale-Signature";
export const TIMESTAMP_HEADER = "X-ProxyScale-Timestamp";

/** `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, the value of X-ProxyScale-Signature. */
export function signWebhookPayload(
  secret: string,
  timestamp: string | number,
  body: string | Buffer,
): string {
  const hmac = createHmac("sha256", secret).update(`${timestamp}.`).update(body);
  return `sha256=${hmac.digest("hex")}`;
}

/**
 * For receivers: true when `signature` is the HMAC of `"<timestamp>.<body>"` under `secret` and the timestamp
 * (unix seconds) is within `toleranceSeconds` of now. Pass the raw body bytes, before any JSON parsing.
 * The comparison is constant-time; malformed input is false, never an exception.
 */
export function verifyWebhookSignature(
  secret: string,
  timestamp: string | undefined,
  body: string | Buffer,
  signature: string | undefined,
  toleranceSeconds = 300,
  nowSeconds = Date.now() / 1000,
): boolean {
  if (!timestamp || !/^\d{1,15}$/.test(timestamp)) return false;
  if (Math.abs(nowSeconds - Number(timestamp)) > toleranceSeconds) return false;
  if (!signature || !/^sha256=[0-9a-f]{64}$/i.test(signature)) return false;
  const expected = Buffer.from(signWebhookPayload(secret, timestamp, body).slice("sha256=".length), "hex");
  const given = Buffer.from(signature.slice("sha256=".length), "hex");
  return timingSafeEqual(expected, given);
}

const completedAnswerSchema = z.object({ observedReplicas: z.number().int().min(0) });
const statusAnswerSchema = z.object({
  replicas: z.number().int().min(0),
  readyReplicas: z.number().int().min(0).optional(),
  unhealthyReplicas: z.number().int().min(0).optional(),
});

type AttemptOutcome = { done: SetReplicasResult } | { retry: ActuatorError; retryAfterMs?: number };

/**
 * POSTs `{ proxyId, eventId, fromReplicas, toReplicas }`, signed, to the configured URL. 200 with
 * `{ observedReplicas }` completes the event now; 202 means the receiver completes it later.
 */
export class WebhookActuator implements Actuator {
  readonly kind = "webhook";
  private observedReplicas: number;

  constructor(
    private readonly config: WebhookActuatorConfig,
    deps: Pick<ActuatorDeps, "initialReplicas">,
  ) {
    this.observedReplicas = deps.initialReplicas ?? 0;
  }

  async getReplicas(): Promise<ReplicaCounts> {
    if (!this.config.statusUrl) {
      return { replicas: this.observedReplicas, readyReplicas: this.observedReplicas, unhealthyReplicas: 0 };
    }
    const target = describeUrl(this.config.statusUrl);
    const response = await this.request(this.config.statusUrl, "GET", "", undefined).catch(
      (error: unknown) => {
        throw new ActuatorError("unavailable", `webhook status ${target} failed: ${errorMessage(error)}`, {
          retryable: true,
          cause: error,
        });
      },
    );
    const text = await response.text();
    if (!response.ok) throw statusError(response.status, `webhook status ${target}`, text);
    const parsed = statusAnswerSchema.safeParse(parseJson(text));
    if (!parsed.success) {
      throw new ActuatorError(
        "bad_response",
        `webhook status ${target} must answer { replicas, readyReplicas? }`,
      );
    }
    const { replicas, readyReplicas = replicas, unhealthyReplicas = 0 } = parsed.data;
    this.observedReplicas = replicas;
    return { replicas, readyReplicas, unhealthyReplicas };
  }

  async setReplicas(replicas: number, ctx: SetReplicasContext): Promise<SetReplicasResult> {
    assertReplicaCount(replicas);
    const body = JSON.stringify({
      proxyId: ctx.proxyId,
      eventId: ctx.eventId,
      fromReplicas: ctx.fromReplicas,
      toReplicas: replicas,
    });
    let lastError: ActuatorError | undefined;
    for (let attempt = 1; attempt <= this.config.maxAttempts; attempt++) {
      throwIfAborted(ctx.signal, "webhook");
      const outcome = await this.attempt(body, ctx.signal);
      if ("done" in outcome) {
        if (outcome.done.status === "completed") this.observedReplicas = outcome.done.observedReplicas;
        return outcome.done;
      }
      lastError = outcome.retry;
      if (!lastError.retryable || attempt === this.config.maxAttempts) break;
      const backoff = exponentialBackoffMs(attempt, {
        initialMs: this.config.initialBackoffMs,
        maxMs: this.config.maxBackoffMs,
        jitter: 0.2,
      });
      await sleep(
        Math.min(this.config.maxBackoffMs, Math.max(backoff, outcome.retryAfterMs ?? 0)),
        ctx.signal,
      );
    }
    const error = lastError ?? new ActuatorError("unavailable", "webhook was not attempted");
    if (!error.retryable) throw error;
    throw new ActuatorError(
      error.code,
      `webhook gave up after ${this.config.maxAttempts} attempts: ${error.message}`,
      error.status === undefined ? { cause: error } : { cause: error, status: error.status },
    );
  }

  async close(): Promise<void> {}

  private async attempt(body: string, signal: AbortSignal | undefined): Promise<AttemptOutcome> {
    const target = describeUrl(this.config.url);
    let response: Response;
    try {
      response = await this.request(this.config.url, "POST", body, signal);
    } catch (error) {
      if (signal?.aborted) throw new ActuatorError("aborted", "webhook was aborted", { cause: error });
      const timedOut = error instanceof Error && error.name === "TimeoutError";
      const message = timedOut
        ? `POST ${target} timed out after ${this.config.timeoutMs} ms`
        : `POST ${target} failed: ${errorMessage(error)}`;
      return { retry: new ActuatorError(timedOut ? "timeout" : "unavailable", message, { retryable: true }) };
    }
    const text = await response.text().catch(() => "");
    if (response.status === 202) return { done: { status: "accepted" } };
    if (response.ok) {
      const parsed = completedAnswerSchema.safeParse(parseJson(text));
      if (!parsed.success) {
        return {
          retry: new ActuatorError(
            "bad_response",
            `POST ${target} answered ${response.status} without { observedReplicas: integer ≥ 0 }; answer 202 to complete the event later`,
          ),
        };
      }
      return { done: { status: "completed", observedReplicas: parsed.data.observedReplicas } };
    }
    const error = statusError(response.status, `POST ${target}`, text);
    const retryAfter = Number(response.headers.get("retry-after"));
    return Number.isFinite(retryAfter) && retryAfter > 0
      ? { retry: error, retryAfterMs: retryAfter * 1000 }
      : { retry: error };
  }

  private request(url: string, method: "GET" | "POST", body: string, signal: AbortSignal | undefined) {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const timeout = AbortSignal.timeout(this.config.timeoutMs);
    return fetch(url, {
      method,
      headers: {
        ...this.config.headers,
        ...(method === "POST" ? { "content-type": "application/json" } : {}),
        "user-agent": "ProxyScale-Webhook/1",
        [TIMESTAMP_HEADER]: timestamp,
        [SIGNATURE_HEADER]: signWebhookPayload(this.config.secret, timestamp, body),
      },
      ...(method === "POST" ? { body } : {}),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
  }
}

function statusError(status: number, what: string, body: string): ActuatorError {
  const detail = body.trim() ? `: ${body.trim().slice(0, 300)}` : "";
  const message = `${what} answered ${status}${detail}`;
  if (status === 401) return new ActuatorError("unauthorized", message, { status });
  if (status === 403) return new ActuatorError("forbidden", message, { status });
  if (status === 404) return new ActuatorError("not_found", message, { status });
  if (status === 409) return new ActuatorError("conflict", message, { status });
  const retryable = status === 408 || status === 429 || status >= 500;
  return new ActuatorError(retryable ? "unavailable" : "invalid_request", message, { status, retryable });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Origin and path only: a query string may carry a credential. */
function describeUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}
