import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseActuatorConfig, type WebhookActuatorConfig } from "@proxyscale/core";
import { afterEach, describe, expect, it } from "vitest";
import {
  ActuatorError,
  SIGNATURE_HEADER,
  signWebhookPayload,
  TIMESTAMP_HEADER,
  verifyWebhookSignature,
  WebhookActuator,
} from "../../src/actuators/index.ts";

const SECRET = "shared-secret-0123456789";

interface Delivery {
  method: string;
  body: string;
  timestamp: string | undefined;
  signature: string | undefined;
  verified: boolean;
  headers: IncomingMessage["headers"];
}

type Reply = (res: ServerResponse, delivery: Delivery, index: number) => void;

const servers: Array<ReturnType<typeof createServer>> = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A real receiver that verifies each delivery with the exported helper, as a user's receiver would. */
async function startReceiver(reply: Reply) {
  const deliveries: Delivery[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const timestamp = req.headers[TIMESTAMP_HEADER.toLowerCase()] as string | undefined;
      const signature = req.headers[SIGNATURE_HEADER.toLowerCase()] as string | undefined;
      const delivery: Delivery = {
        method: req.method ?? "",
        body,
        timestamp,
        signature,
        verified: verifyWebhookSignature(SECRET, timestamp, body, signature, 300),
        headers: req.headers,
      };
      deliveries.push(delivery);
      reply(res, delivery, deliveries.length - 1);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/scale?token=abc`, deliveries };
}

function webhook(url: string, overrides: Record<string, unknown> = {}): WebhookActuator {
  const config = parseActuatorConfig({
    kind: "webhook",
    url,
    secret: SECRET,
    initialBackoffMs: 50,
    maxBackoffMs: 200,
    ...overrides,
  }) as WebhookActuatorConfig;
  return new WebhookActuator(config, { initialReplicas: 2 });
}

const json = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));

const ctx = { proxyId: "edge", eventId: "evt-42", fromReplicas: 2 };

describe("webhook signatures", () => {
  const body = '{"proxyId":"edge","toReplicas":3}';
  const now = 1_700_000_000;
  const signature = signWebhookPayload(SECRET, now, body);

  it("accepts the signature of the exact timestamp and body", () => {
    expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifyWebhookSignature(SECRET, String(now), body, signature, 300, now + 10)).toBe(true);
    expect(verifyWebhookSignature(SECRET, String(now), Buffer.from(body), signature, 300, now)).toBe(true);
  });

  it("rejects a changed body, timestamp or secret", () => {
    expect(verifyWebhookSignature(SECRET, String(now), body.replace("3", "30"), signature, 300, now)).toBe(
      false,
    );
    expect(verifyWebhookSignature(SECRET, String(now + 1), body, signature, 300, now)).toBe(false);
    expect(verifyWebhookSignature("another-secret-0123456", String(now), body, signature, 300, now)).toBe(
      false,
    );
  });

  it("rejects a timestamp outside the tolerance, replayed or from the future", () => {
    expect(verifyWebhookSignature(SECRET, String(now), body, signature, 300, now + 301)).toBe(false);
    expect(verifyWebhookSignature(SECRET, String(now), body, signature, 300, now - 301)).toBe(false);
  });

  it("answers false, never throws, for malformed input", () => {
    for (const bad of [undefined, "", "sha256=", "sha256=zz", `sha1=${"a".repeat(64)}`, `${signature}00`]) {
      expect(verifyWebhookSignature(SECRET, String(now), body, bad, 300, now)).toBe(false);
    }
    for (const badTimestamp of [undefined, "", "12.5", "soon", "-1"]) {
      expect(verifyWebhookSignature(SECRET, badTimestamp, body, signature, 300, now)).toBe(false);
    }
  });
});

describe("webhook actuator", () => {
  it("POSTs a signed event and completes with the receiver's observed count", async () => {
    const receiver = await startReceiver((res) => json(res, 200, { observedReplicas: 3 }));
    const actuator = webhook(receiver.url, { headers: { Authorization: "Bearer receiver-token" } });
    await expect(actuator.setReplicas(3, ctx)).resolves.toEqual({ status: "completed", observedReplicas: 3 });
    expect(receiver.deliveries).toHaveLength(1);
    const [delivery] = receiver.deliveries;
    expect(delivery?.verified).toBe(true);
    expect(JSON.parse(delivery!.body)).toEqual({
      proxyId: "edge",
      eventId: "evt-42",
      fromReplicas: 2,
      toReplicas: 3,
    });
    expect(delivery?.headers["content-type"]).toBe("application/json");
    expect(delivery?.headers.authorization).toBe("Bearer receiver-token");
    expect(await actuator.getReplicas()).toEqual({ replicas: 3, readyReplicas: 3, unhealthyReplicas: 0 });
  });

  it("treats 202 as accepted: the receiver completes the event later", async () => {
    const receiver = await startReceiver((res) => json(res, 202, { queued: true }));
    const actuator = webhook(receiver.url);
    await expect(actuator.setReplicas(5, ctx)).resolves.toEqual({ status: "accepted" });
    expect(await actuator.getReplicas()).toMatchObject({ replicas: 2 });
  });

  it("retries 5xx with backoff, re-signing each attempt, until the receiver answers", async () => {
    const receiver = await startReceiver((res, _delivery, index) =>
      index < 2 ? json(res, 503, { error: "busy" }) : json(res, 200, { observedReplicas: 4 }),
    );
    const actuator = webhook(receiver.url);
    await expect(actuator.setReplicas(4, ctx)).resolves.toEqual({ status: "completed", observedReplicas: 4 });
    expect(receiver.deliveries).toHaveLength(3);
    expect(receiver.deliveries.every((delivery) => delivery.verified)).toBe(true);
    expect(new Set(receiver.deliveries.map((delivery) => JSON.parse(delivery.body).eventId))).toEqual(
      new Set(["evt-42"]),
    );
  });

  it("gives up after maxAttempts with the last status and body", async () => {
    const receiver = await startReceiver((res) => json(res, 500, { error: "scaler exploded" }));
    const actuator = webhook(receiver.url, { maxAttempts: 3 });
    const error = await actuator.setReplicas(4, ctx).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ActuatorError);
    expect(error).toMatchObject({
      code: "unavailable",
      status: 500,
      message: expect.stringContaining("webhook gave up after 3 attempts: POST http://127.0.0.1"),
    });
    expect((error as Error).message).toContain('answered 500: {"error":"scaler exploded"}');
    expect((error as Error).message).not.toContain("token=abc");
    expect(receiver.deliveries).toHaveLength(3);
  });

  it("does not retry a 4xx refusal", async () => {
    const receiver = await startReceiver((res) => json(res, 401, { error: "bad signature" }));
    const actuator = webhook(receiver.url);
    await expect(actuator.setReplicas(4, ctx)).rejects.toMatchObject({ code: "unauthorized", status: 401 });
    expect(receiver.deliveries).toHaveLength(1);
  });

  it("times out each attempt and retries, then reports the timeout", async () => {
    const receiver = await startReceiver(() => {
      // Never answers.
    });
    const actuator = webhook(receiver.url, { timeoutMs: 150, maxAttempts: 2 });
    const started = Date.now();
    await expect(actuator.setReplicas(4, ctx)).rejects.toMatchObject({
      code: "timeout",
      message: expect.stringContaining("timed out after 150 ms"),
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(receiver.deliveries).toHaveLength(2);
  });

  it("retries connection failures", async () => {
    const receiver = await startReceiver(() => {});
    const closed = servers.pop()!;
    await new Promise((resolve) => closed.close(resolve));
    const actuator = webhook(receiver.url, { maxAttempts: 2 });
    await expect(actuator.setReplicas(4, ctx)).rejects.toMatchObject({
      code: "unavailable",
      message: expect.stringContaining("webhook gave up after 2 attempts"),
    });
  });

  it("refuses a 200 that does not say what it observed", async () => {
    const receiver = await startReceiver((res) => json(res, 200, { ok: true }));
    const actuator = webhook(receiver.url);
    await expect(actuator.setReplicas(4, ctx)).rejects.toMatchObject({
      code: "bad_response",
      message: expect.stringContaining("without { observedReplicas: integer ≥ 0 }"),
    });
    expect(receiver.deliveries).toHaveLength(1);
  });

  it("reads observed replicas from statusUrl with a signed GET", async () => {
    const receiver = await startReceiver((res) =>
      json(res, 200, { replicas: 6, readyReplicas: 5, unhealthyReplicas: 1 }),
    );
    const actuator = webhook("http://127.0.0.1:1/unused", { statusUrl: receiver.url });
    expect(await actuator.getReplicas()).toEqual({ replicas: 6, readyReplicas: 5, unhealthyReplicas: 1 });
    expect(receiver.deliveries[0]).toMatchObject({ method: "GET", body: "", verified: true });
  });
});
