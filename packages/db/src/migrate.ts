import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { type Db, queryRows } from "./db.ts";
import { MigrationError } from "./errors.ts";

export const MIGRATIONS_FOLDER = fileURLToPath(new URL("../drizzle", import.meta.url));
export const MIGRATIONS_TABLE = "__drizzle_migrations";

/** First key of `pg_advisory_xact_lock(int, int)`; the second is the schema's hash. */
const MIGRATION_LOCK_CLASS = 0x70_73_6d; // "psm"

interface JournalEntry {
  idx: number;
  when: number;
  tag: string;
}

export interface Migration {
  tag: string;
  /** drizzle-kit's `when`, the key the journal table records (as drizzle's own migrator does). */
  createdAt: number;
  hash: string;
  statements: string[];
}

/**
 * Reads drizzle-kit's journal and SQL files. drizzle-kit qualifies references with `"public".`; the qualifier is
 * dropped so the statements land in whatever schema `search_path` names.
 */
export function readMigrations(folder = MIGRATIONS_FOLDER): Migration[] {
  const journal = JSON.parse(readFileSync(`${folder}/meta/_journal.json`, "utf8")) as {
    entries: JournalEntry[];
  };
  return journal.entries.map((entry) => {
    const text = readFileSync(`${folder}/${entry.tag}.sql`, "utf8");
    return {
      tag: entry.tag,
      createdAt: entry.when,
      hash: createHash("sha256").update(text).digest("hex"),
      statements: text
        .split("--> statement-breakpoint")
        .map((statement) => statement.replaceAll('"public".', "").trim())
        .filter((statement) => statement.length > 0),
    };
  });
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function assertSchemaName(schema: string): void {
  if (!SCHEMA_NAME.test(schema)) {
    throw new Error(
      `pgSchema "${schema}" must be a lower-case identifier: a letter or _, then letters, digits, _`,
    );
  }
}

/**
 * Applies pending migrations to `schema`, each in its own transaction. Each transaction first takes an advisory
 * lock for the schema, so servers starting together apply each migration once: a second migrator waits, then
 * finds it recorded. Re-running is a no-op. A recorded migration whose file has changed is an error.
 */
export async function migrate(
  db: Db,
  options: { schema: string; migrations?: Migration[] },
): Promise<{ applied: string[] }> {
  const { schema } = options;
  assertSchemaName(schema);
  const migrations = options.migrations ?? readMigrations();
  const applied: string[] = [];
  for (const migration of migrations) {
    const ran = await db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_CLASS}, hashtext(${schema}))`);
      const existing = await queryRows<{ found: boolean }>(
        tx,
        sql`select exists (select 1 from pg_namespace where nspname = ${schema}) as found`,
      );
      if (!existing[0]?.found) await tx.execute(sql.raw(`create schema "${schema}"`));
      await tx.execute(sql.raw(`set local search_path to "${schema}"`));
      await tx.execute(
        sql.raw(
          `create table if not exists "${MIGRATIONS_TABLE}" (id serial primary key, hash text not null, created_at bigint)`,
        ),
      );
      const recorded = await queryRows<{ hash: string }>(
        tx,
        sql`select hash from ${sql.identifier(MIGRATIONS_TABLE)} where created_at = ${migration.createdAt}`,
      );
      if (recorded[0]) {
        if (recorded[0].hash !== migration.hash) {
          throw new MigrationError(
            `migration ${migration.tag} was changed after it was applied to schema "${schema}": ` +
              "never edit a committed migration; change the schema and run db:generate for a new one",
          );
        }
        return false;
      }
      for (const statement of migration.statements) {
        try {
          await tx.execute(sql.raw(statement));
        } catch (error) {
          const cause = (error as Error).cause instanceof Error ? (error as Error).cause : error;
          throw new MigrationError(`migration ${migration.tag} failed: ${(cause as Error).message}`, {
            cause,
          });
        }
      }
      await tx.execute(
        sql`insert into ${sql.identifier(MIGRATIONS_TABLE)} (hash, created_at) values (${migration.hash}, ${migration.createdAt})`,
      );
      return true;
    });
    if (ran) applied.push(migration.tag);
  }
  return { applied };
}
