import { afterEach, describe, expect, it } from "vitest";
import type { RunningServer } from "../src/start.ts";
import { startInMemoryServer } from "./running-server.ts";

describe("startServer", () => {
  let running: RunningServer | undefined;
  const saved = process.env.DATABASE_URL;

  afterEach(async () => {
    await running?.close();
    running = undefined;
    if (saved === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = saved;
  });

  it("takes its database from the config alone, not from a DATABASE_URL left in the process's environment", async () => {
    // A URL nothing listens on: were it used, the start would fail instead of opening PGlite.
    process.env.DATABASE_URL = "postgres://nobody@127.0.0.1:1/none";
    running = await startInMemoryServer();
    expect(running.database.driver).toBe("pglite");
  });
});
