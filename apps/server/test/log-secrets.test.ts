import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { type Database, openDatabase } from "@proxyscale/db";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/logger.ts";
import { createServer } from "../src/server.ts";
import { startServerProcess } from "./process.ts";
import {
  type Client,
  client,
  disposeDatabase,
  TEST_SECRET,
  testDriverList,
  token,
  unique,
} from "./support.ts";

/**
 * Secrets sent in requests that fail never reach the log: not in the error's message (drizzle's "Failed query …
 * params: …"), its stack, its properties (`query`, `parameters`, `params`), nor in any nested `cause`.
 */

const plant = (label: string) => `planted-${label}-${randomBytes(8).toString("hex")}`;

/** A trigger that makes proxy inserts and updates named refused-… fail inside the database, whatever the input. */
async function addFailingTrigger(database: Database): Promise<void> {
  for (const statement of [
    `create or replace function refuse_proxy_writes() returns trigger language plpgsql as $$
     begin raise exception 'proxy writes are refused by the test'; end $$`,
    "drop trigger if exists refuse_proxy_writes on proxies",
    `create trigger refuse_proxy_writes before insert or update on proxies
     for each row when (new.name like 'refused-%') execute function refuse_proxy_writes()`,
  ])
    await database.db.execute(sql.raw(statement));
}

/** Requests that fail in several ways with secrets in them; returns every secret planted. */
async function sendFailingRequests(api: Client, url: string, bearer: string): Promise<string[]> {
  const planted: string[] = [];
  const webhook = () => {
    const secret = plant("webhook-secret");
    const header = plant("header-value");
    planted.push(secret, header);
    return { kind: "webhook", url: "http://127.0.0.1:9/scale", secret, headers: { "x-api-key": header } };
  };
  const command = () => {
    const env = plant("env-value");
    planted.push(env);
    return { kind: "command", command: ["/bin/true", "{replicas}"], env: { API_TOKEN: env } };
  };
  const statuses: number[] = [];
  // The database refuses these (the trigger): 500, with the actuator config among the statement's parameters.
  for (const actuator of [webhook(), command()]) {
    statuses.push(
      (await api.request("POST", "/api/proxies", { body: { name: unique("refused"), actuator } })).status,
    );
  }
  // A NUL in the name: PostgreSQL refuses it (or the schema does, once it is checked there).
  statuses.push(
    (
      await api.request("POST", "/api/proxies", {
        body: { name: `nul\u0000${unique("x")}`, actuator: webhook() },
      })
    ).status,
  );
  // An update the database refuses.
  const created = await api.request("POST", "/api/proxies", { body: { name: unique("kept") } });
  expect(created.status).toBe(201);
  statuses.push(
    (
      await api.request("PATCH", `/api/proxies/${created.body.id}`, {
        body: { name: unique("refused"), actuator: command() },
      })
    ).status,
  );
  // The same over tRPC.
  const trpc = await fetch(`${url}/trpc/proxies.register`, {
    method: "POST",
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    body: JSON.stringify({ name: unique("refused"), actuator: webhook() }),
  });
  statuses.push(trpc.status);
  expect(statuses.filter((status) => status === 500).length).toBeGreaterThanOrEqual(4);
  return planted;
}

/** Each planted secret that appears in `log`. */
const leaked = (log: string, planted: string[]) => planted.filter((secret) => log.includes(secret));

describe("secrets in failing requests stay out of the log", () => {
  for (const driver of testDriverList()) {
    describe.skipIf(!driver.available)(`in-process server [${driver.name}]`, () => {
      let lines = "";
      let database: Awaited<ReturnType<typeof driver.open>>;
      let server: ReturnType<typeof createServer>;
      let url: string;
      beforeAll(async () => {
        database = await driver.open();
        await addFailingTrigger(database);
        const destination = new Writable({
          write(chunk, _encoding, done) {
            lines += chunk;
            done();
          },
        });
        server = createServer({
          database,
          auth: { jwtSecret: TEST_SECRET },
          logger: createLogger("trace", destination),
          adminDistDir: null,
        });
        ({ url } = await server.listen(0));
      });
      afterAll(async () => {
        await server?.close();
        if (database) await disposeDatabase(database);
      });

      it("logs each failure with its cause, and none of the planted secrets", async () => {
        const bearer = await token({ role: "operator" });
        const planted = await sendFailingRequests(client(url, bearer), url, bearer);
        expect(lines).toContain("request failed");
        expect(lines).toContain("proxy writes are refused by the test");
        expect(leaked(lines, planted)).toEqual([]);
      });
    });
  }

  describe("the real server process (main.ts, PGlite)", () => {
    let dataDir: string;
    let processHandle: Awaited<ReturnType<typeof startServerProcess>> | undefined;
    beforeAll(async () => {
      const { mkdtempSync } = await import("node:fs");
      const { tmpdir } = await import("node:os");
      const { join } = await import("node:path");
      dataDir = mkdtempSync(join(tmpdir(), "proxyscale-log-secrets-"));
      // Migrate the data directory and add the trigger, then hand it to the server process.
      const prepared = await openDatabase({ driver: "pglite", dataDir });
      await addFailingTrigger(prepared);
      await prepared.close();
      processHandle = await startServerProcess({
        PROXYSCALE_DATA_DIR: dataDir,
        PROXYSCALE_JWT_SECRET: TEST_SECRET,
        LOG_LEVEL: "trace",
      });
    });
    afterAll(async () => {
      await processHandle?.dispose();
      const { rmSync } = await import("node:fs");
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    it("writes none of the planted secrets to stdout or stderr", async () => {
      const running = processHandle!;
      const bearer = await token({ role: "operator" });
      const planted = await sendFailingRequests(client(running.url, bearer), running.url, bearer);
      await expect.poll(() => running.output().stdout).toContain("proxy writes are refused by the test");
      const { stdout, stderr } = running.output();
      await expect
        .poll(() => running.logs().filter((line) => line.msg === "request failed").length)
        .toBeGreaterThanOrEqual(4);
      expect(leaked(stdout + stderr, planted)).toEqual([]);
    });
  });
});
