import { defineConfig } from "drizzle-kit";

/**
 * Tables are generated unqualified (the `public` schema in drizzle's terms). The migrator strips the `public`
 * qualifier and runs the SQL with `search_path` set to the target schema, so the same migrations isolate a test
 * suite in its own schema. The journal table lives in the target schema too (see src/migrate.ts).
 */
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/schema/index.ts",
  out: "./drizzle",
  migrations: { table: "__drizzle_migrations", schema: "public" },
  strict: true,
});
