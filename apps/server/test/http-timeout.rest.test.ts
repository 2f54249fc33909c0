import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import {
  disposeDatabase,
  startTestServer,
  type TestServer,
  testDriverList,
  token,
  unique,
} from "./support.ts";

/** A raw connection to the server; `response` resolves with everything it sent once it closes the connection. */
function rawConnection(url: string): { socket: Socket; response: Promise<string> } {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let received = "";
  socket.on("data", (chunk) => {
    received += chunk;
  });
  const response = new Promise<string>((resolve, reject) => {
    socket.once("close", () => resolve(received));
    socket.once("error", reject);
  });
  return { socket, response };
}

/** Writes one byte every 100 ms until the socket closes (a bounded trickle: at most `bytes` writes). */
function trickle(socket: Socket, bytes: number): void {
  let sent = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || sent >= bytes) return clearInterval(timer);
    socket.write(" ");
    sent += 1;
  }, 100);
  socket.once("close", () => clearInterval(timer));
}

const pglite = testDriverList().find((driver) => driver.name === "pglite")!;

describe("slow requests are cut off at PROXYSCALE_REQUEST_TIMEOUT_SECONDS with a 408", () => {
  let server: TestServer;
  let database: Awaited<ReturnType<typeof pglite.open>>;
  let bearer: string;
  beforeAll(async () => {
    database = await pglite.open();
    server = await startTestServer(database, { requestTimeoutMs: 1_000 });
    bearer = await token({ role: "operator", sub: unique("slow") });
  });
  afterAll(async () => {
    await server?.close();
    if (database) await disposeDatabase(database);
  });

  for (const path of ["/api/proxies", "/trpc/proxies.register"]) {
    it(`answers 408 in JSON and closes the connection when a body trickles in (${path})`, async () => {
      const { socket, response } = rawConnection(server.url);
      const body = JSON.stringify({ name: unique("slow") });
      socket.write(
        `POST ${path} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer ${bearer}\r\n` +
          `content-type: application/json\r\ncontent-length: ${body.length + 600}\r\n\r\n${body}`,
      );
      // 600 bytes at 10 a second would take a minute: the server must not wait for them.
      trickle(socket, 600);
      const text = await response;
      expect(text.split("\r\n")[0]).toBe("HTTP/1.1 408 Request Timeout");
      expect(text.toLowerCase()).toContain("connection: close");
      expect(text).toContain("request body not received within 1 s");
    });
  }

  it("answers 408 when the headers trickle in", async () => {
    const { socket, response } = rawConnection(server.url);
    socket.write("GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-slow: ");
    trickle(socket, 600);
    expect((await response).split("\r\n")[0]).toBe("HTTP/1.1 408 Request Timeout");
  });

  it("still serves a body that arrives within the deadline", async () => {
    const response = await fetch(`${server.url}/api/proxies`, {
      method: "POST",
      headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
      body: JSON.stringify({ name: unique("quick") }),
    });
    expect(response.status).toBe(201);
  });

  it("reads the deadline from PROXYSCALE_REQUEST_TIMEOUT_SECONDS (default 10 s)", () => {
    expect(loadConfig({}).requestTimeoutMs).toBe(10_000);
    expect(loadConfig({ PROXYSCALE_REQUEST_TIMEOUT_SECONDS: "2.5" }).requestTimeoutMs).toBe(2_500);
    expect(() => loadConfig({ PROXYSCALE_REQUEST_TIMEOUT_SECONDS: "0" })).toThrow(
      /PROXYSCALE_REQUEST_TIMEOUT_SECONDS: must be greater than 0/,
    );
  });
});
