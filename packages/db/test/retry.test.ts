import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import {
  type Db,
  isRetryableAbort,
  listAudit,
  TRANSACTION_ATTEMPTS,
  withRetriedTransaction,
  withTransaction,
  writeAudit,
} from "../src/index.ts";
import { forEachDriver, unique } from "./drivers.ts";

/** A real PostgreSQL error with `code`, raised by the database itself. */
function raise(db: Db, code: string) {
  return db.execute(
    sql.raw(`do $$ begin raise exception 'injected ${code}' using errcode = '${code}'; end $$`),
  );
}

forEachDriver("retried transactions", ({ database }) => {
  const db = () => database().db;

  describe("withRetriedTransaction", () => {
    it("runs a transaction again after a deadlock or a serialization failure, keeping only the last attempt's writes", async () => {
      for (const code of ["40P01", "40001"]) {
        const actorId = unique("actor");
        let attempts = 0;
        const result = await withRetriedTransaction(db(), async (tx) => {
          attempts += 1;
          await writeAudit(tx, { actorId, action: "test", entityType: "t", entityId: String(attempts) });
          if (attempts < 3) await raise(tx, code);
          return attempts;
        });
        expect(result, code).toBe(3);
        const stored = (await listAudit(db(), { actorId })).items.map((entry) => entry.entityId);
        expect(stored, code).toEqual(["3"]);
      }
    });

    it(`gives up after ${TRANSACTION_ATTEMPTS} attempts, and throws any other error at once`, async () => {
      let attempts = 0;
      const deadlocked = withRetriedTransaction(db(), async (tx) => {
        attempts += 1;
        await raise(tx, "40P01");
      });
      await expect(deadlocked).rejects.toSatisfy(isRetryableAbort);
      expect(attempts).toBe(TRANSACTION_ATTEMPTS);

      attempts = 0;
      const failed = withRetriedTransaction(db(), async (tx) => {
        attempts += 1;
        await raise(tx, "22012");
      });
      await expect(failed).rejects.not.toSatisfy(isRetryableAbort);
      expect(attempts).toBe(1);
    });

    it("runs once inside a transaction: the abort undid the outer one, which only its caller can run again", async () => {
      let attempts = 0;
      await expect(
        withTransaction(db(), (outer) =>
          withRetriedTransaction(outer, async (tx) => {
            attempts += 1;
            await raise(tx, "40P01");
          }),
        ),
      ).rejects.toSatisfy(isRetryableAbort);
      expect(attempts).toBe(1);
    });
  });
});
