import { createProxy, createScalingEvent, type Database, getProxy, getScalingEvent } from "@proxyscale/db";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { NoneActuator } from "../../src/actuators/none.ts";
import type { Actuator } from "../../src/actuators/types.ts";
import { ActuatorRegistry } from "../../src/control/actuators.ts";
import { ScaleExecutor } from "../../src/control/executor.ts";
import { createLogger } from "../../src/logger.ts";
import { disposeDatabase, testDriverList, unique } from "../support.ts";

/**
 * A trigger refuses the first `refuse` writes that complete an event (a real database error, not retried: it is
 * no deadlock). A sequence counts them, since sequences are not rolled back with the refused write.
 */
const REFUSE_COMPLETIONS = [
  "create sequence completion_writes",
  "create table refused_completions (n int not null)",
  "insert into refused_completions values (0)",
  `create function refuse_completion() returns trigger language plpgsql as $$
   begin
     if new.status = 'completed' and nextval('completion_writes') <= (select n from refused_completions) then
       raise exception 'injected: the completion write is refused';
     end if;
     return new;
   end $$`,
  `create trigger refuse_completion before update on proxy_scaling_events
     for each row execute function refuse_completion()`,
];

for (const driver of testDriverList()) {
  describe.skipIf(!driver.available)(`the executor stores what the actuator did [${driver.name}]`, () => {
    let database: Database;
    let executor: ScaleExecutor;
    /** What each proxy's actuator reports when asked what runs, when not what it last set. */
    const reported = new Map<string, number>();
    const actuators = new Map<string, Actuator>();

    beforeAll(async () => {
      database = await driver.open();
      for (const statement of REFUSE_COMPLETIONS) await database.db.execute(sql.raw(statement));
      const logger = createLogger("silent");
      const registry = new ActuatorRegistry({
        db: database.db,
        logger,
        create: async (_config, deps) => {
          const actuator = new NoneActuator(deps);
          const getReplicas = actuator.getReplicas.bind(actuator);
          actuator.getReplicas = async () => {
            const counts = await getReplicas();
            const replicas = reported.get(deps.proxyId) ?? counts.replicas;
            return { replicas, readyReplicas: replicas, unhealthyReplicas: 0 };
          };
          actuators.set(deps.proxyId, actuator);
          return actuator;
        },
      });
      executor = new ScaleExecutor({
        db: database.db,
        registry,
        logger,
        holder: "executor-test",
        acceptedTimeoutMs: 60_000,
        owns: () => true,
        handOff: () => {},
      });
    });

    afterAll(async () => {
      if (database) await disposeDatabase(database);
    });

    async function scale(refuse: number, observed?: number) {
      await database.db.execute(sql`update refused_completions set n = ${refuse}`);
      await database.db.execute(sql`select setval('completion_writes', 1, false)`);
      const ownerId = unique("owner");
      const proxy = await createProxy(database.db, { ownerId, name: unique("proxy"), actorId: ownerId });
      if (observed !== undefined) reported.set(proxy.id, observed);
      const event = await createScalingEvent(database.db, {
        proxyId: proxy.id,
        newReplicas: 3,
        triggeredBy: "manual",
        reason: "test",
      });
      await executor.run(event);
      const getReplicas = vi.spyOn(actuators.get(proxy.id)!, "getReplicas");
      return { proxy, event, getReplicas };
    }

    it("completes an applied scale whose completion write the database refused, from what the actuator then observes", async () => {
      const { proxy, event } = await scale(1);
      expect(await getScalingEvent(database.db, { id: event.id })).toMatchObject({
        status: "completed",
        error: null,
      });
      expect((await getProxy(database.db, { id: proxy.id }))?.currentReplicas).toBe(3);
    });

    it("fails it with the count the actuator observes when that is not the one asked for", async () => {
      const { proxy, event } = await scale(1, 2);
      expect(await getScalingEvent(database.db, { id: event.id })).toMatchObject({
        status: "failed",
        error: "the actuator observes 2 replicas, not the 3 asked for",
      });
      expect((await getProxy(database.db, { id: proxy.id }))?.currentReplicas).toBe(2);
    });

    it("leaves it in progress when the database refuses again, and recovery completes it from the actuator", async () => {
      const { proxy, event, getReplicas } = await scale(2);
      expect(await getScalingEvent(database.db, { id: event.id })).toMatchObject({ status: "in_progress" });
      expect(await executor.recover({ ...event, status: "in_progress" })).toBe("completed");
      expect(getReplicas).toHaveBeenCalledTimes(1);
      expect(await getScalingEvent(database.db, { id: event.id })).toMatchObject({ status: "completed" });
      expect((await getProxy(database.db, { id: proxy.id }))?.currentReplicas).toBe(3);
    });
  });
}
