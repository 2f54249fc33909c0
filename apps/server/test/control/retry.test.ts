import { type Database, listDecisions, queryRows } from "@proxyscale/db";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Client,
  client,
  disposeDatabase,
  HIGH_LOAD,
  TEST_SECRET,
  testDriverList,
  token,
  unique,
} from "../support.ts";
import { type ControlNode, startControlNode } from "./node.ts";

/**
 * A trigger refuses the first decision insert (a real database error, as an outage or a timeout gives); a
 * sequence counts the attempts, since sequences are not rolled back with the refused insert.
 */
const REFUSE_FIRST_DECISION = [
  "create sequence decision_inserts",
  `create function refuse_first_decision() returns trigger language plpgsql as $$
   begin
     if nextval('decision_inserts') = 1 then
       raise exception 'injected: the decision insert is refused';
     end if;
     return new;
   end $$`,
  `create trigger refuse_first_decision before insert on scaling_decisions
     for each row execute function refuse_first_decision()`,
];

for (const driver of testDriverList()) {
  describe.skipIf(!driver.available)(`a failed evaluation is retried [${driver.name}]`, () => {
    let database: Database;
    let node: ControlNode;
    let operator: Client;

    beforeAll(async () => {
      database = await driver.open();
      node = await startControlNode(database, TEST_SECRET, { timers: false });
      operator = client(node.url, await token({ role: "operator", sub: unique("retry-owner") }));
      for (const statement of REFUSE_FIRST_DECISION) await database.db.execute(sql.raw(statement));
    });

    afterAll(async () => {
      await node?.close();
      if (database) await disposeDatabase(database);
    });

    it("queues the batch again when its decisions could not be stored, so the push is still evaluated", async () => {
      const created = await operator.request("POST", "/api/proxies", { body: { name: unique("retry") } });
      const proxyId = created.body.id as string;
      expect(
        (await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: HIGH_LOAD })).status,
      ).toBe(201);
      await expect
        .poll(async () => (await listDecisions(database.db, { proxyId })).items.length, { timeout: 10_000 })
        .toBe(1);
      const [attempts] = await queryRows<{ value: number }>(
        database.db,
        sql`select last_value::int as value from decision_inserts`,
      );
      // The first insert was refused and the batch ran again.
      expect(attempts?.value).toBeGreaterThanOrEqual(2);
    });
  });
}
