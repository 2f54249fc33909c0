import { expect, it } from "vitest";
import { exchangeRateUsage, InvalidInputError, pruneRateUsage, type RateUsage } from "../src/index.ts";
import { forEachDriver, unique } from "./drivers.ts";

const MINUTE = 60_000;
const W = Date.UTC(2030, 0, 1, 12, 0, 0);

const sorted = (rows: RateUsage[]) =>
  [...rows].sort((a, b) =>
    a.userId === b.userId ? a.windowStart - b.windowStart : a.userId < b.userId ? -1 : 1,
  );

forEachDriver("rate limit windows", ({ database }) => {
  const db = () => database().db;

  it("sums each server's requests per user and window, and answers the counts as they stood before the call", async () => {
    const [a, b] = [unique("user-a"), unique("user-b")].sort();
    const users = [a!, b!];
    expect(
      await exchangeRateUsage(db(), {
        add: [{ userId: a!, windowStart: W, requests: 3 }],
        userIds: users,
        sinceWindow: W - MINUTE,
      }),
    ).toEqual([]);
    const second = await exchangeRateUsage(db(), {
      add: [
        { userId: a!, windowStart: W, requests: 2 },
        { userId: b!, windowStart: W, requests: 1 },
        { userId: a!, windowStart: W - MINUTE, requests: 4 },
      ],
      userIds: users,
      sinceWindow: W - MINUTE,
    });
    expect(second).toEqual([{ userId: a!, windowStart: W, requests: 3 }]);
    const third = await exchangeRateUsage(db(), { add: [], userIds: users, sinceWindow: W - MINUTE });
    expect(sorted(third)).toEqual([
      { userId: a!, windowStart: W - MINUTE, requests: 4 },
      { userId: a!, windowStart: W, requests: 5 },
      { userId: b!, windowStart: W, requests: 1 },
    ]);
    const sinceW = await exchangeRateUsage(db(), { add: [], userIds: [a!], sinceWindow: W });
    expect(sinceW).toEqual([{ userId: a!, windowStart: W, requests: 5 }]);
  });

  it("prunes the windows that started before a time, and only those", async () => {
    const user = unique("user-prune");
    await exchangeRateUsage(db(), {
      add: [
        { userId: user, windowStart: W - 5 * MINUTE, requests: 1 },
        { userId: user, windowStart: W, requests: 1 },
      ],
      userIds: [],
      sinceWindow: W,
    });
    expect(await pruneRateUsage(db(), { before: W - MINUTE })).toBeGreaterThanOrEqual(1);
    const left = await exchangeRateUsage(db(), { add: [], userIds: [user], sinceWindow: 0 });
    expect(left).toEqual([{ userId: user, windowStart: W, requests: 1 }]);
  });

  it("rejects a request count that is not a positive integer, storing nothing", async () => {
    const user = unique("user-bad");
    await expect(
      exchangeRateUsage(db(), {
        add: [{ userId: user, windowStart: W, requests: 0 }],
        userIds: [user],
        sinceWindow: 0,
      }),
    ).rejects.toBeInstanceOf(InvalidInputError);
    expect(await exchangeRateUsage(db(), { add: [], userIds: [user], sinceWindow: 0 })).toEqual([]);
  });
});
