import {
  acquireLeases,
  type Database,
  type Logger,
  listLeases,
  notifyControl,
  proxyShard,
  releaseLeases,
} from "@proxyscale/db";
import { errorMessage } from "../actuators/types.ts";

/**
 * Proxies are split into this many shards by id; a server owns a proxy while it holds the lease of its shard.
 * Every server must use the same number (it is part of the protocol, not a setting).
 */
export const SHARD_COUNT = 64;
const SHARD_PREFIX = "shard:";
const SERVER_PREFIX = "server:";

export const shardLeaseName = (shard: number) => `${SHARD_PREFIX}${shard}`;
export const shardOf = (proxyId: string) => proxyShard(proxyId, SHARD_COUNT);

export interface ShardLeasesOptions {
  database: Database;
  holder: string;
  ttlMs: number;
  logger: Logger;
  clock?: () => number;
  /** False while this server still has work in the shard (a scale running): it is then never given away. */
  canRelease(shard: number): boolean;
}

export interface HeartbeatResult {
  held: number[];
  acquired: number[];
  lost: number[];
  released: number[];
  liveServers: number;
}

/**
 * Holds this server's shard leases in the `leases` table. Each heartbeat (a third of the TTL) renews the held
 * ones, announces the server (`server:<holder>`, so servers count each other) and moves shards towards a fair
 * share: ceil(SHARD_COUNT / live servers). A server holding more than its share gives up the excess it has no
 * work in; one holding less takes expired or free shards. A dead server stops renewing and its shards expire.
 */
export class ShardLeases {
  private held = new Set<number>();
  private readonly handOffs = new Set<string>();
  private handOffScheduled = false;
  /** Local deadline of the held set: past it, without a successful heartbeat, this server owns nothing. */
  private validUntil = 0;
  private readonly clock: () => number;

  constructor(private readonly options: ShardLeasesOptions) {
    this.clock = options.clock ?? Date.now;
  }

  get holder(): string {
    return this.options.holder;
  }

  /** Whether this server may evaluate and scale the proxy now. */
  owns(proxyId: string): boolean {
    return this.clock() < this.validUntil && this.held.has(shardOf(proxyId));
  }

  heldShards(): number[] {
    return this.clock() < this.validUntil ? [...this.held].sort((a, b) => a - b) : [];
  }

  /**
   * Tells the server that owns `proxyId` it has work (PostgreSQL NOTIFY on the schema's control channel, batched
   * per turn of the event loop). On PGlite there is one server, which owns every shard: nothing to tell.
   */
  handOff(proxyId: string): void {
    const { database, logger } = this.options;
    if (database.driver !== "postgres") return;
    this.handOffs.add(proxyId);
    if (this.handOffScheduled) return;
    this.handOffScheduled = true;
    setImmediate(() => {
      this.handOffScheduled = false;
      const proxyIds = [...this.handOffs];
      this.handOffs.clear();
      notifyControl(database.db, { schema: database.schema, proxyIds }).catch((error: unknown) =>
        logger.warn({ err: errorMessage(error) }, "control: could not notify the owning server"),
      );
    });
  }

  async heartbeat(): Promise<HeartbeatResult> {
    const { holder, ttlMs } = this.options;
    const db = this.options.database.db;
    // A margin under the TTL, so this server stops acting before another may take over.
    const startedAt = this.clock();
    await acquireLeases(db, { names: [`${SERVER_PREFIX}${holder}`], holder, ttlMs });
    const [shards, servers] = await Promise.all([
      listLeases(db, { prefix: SHARD_PREFIX }),
      listLeases(db, { prefix: SERVER_PREFIX }),
    ]);
    const liveServers = Math.max(1, servers.filter((lease) => lease.live).length);
    const fairShare = Math.ceil(SHARD_COUNT / liveServers);
    const byShard = new Map(shards.map((lease) => [Number(lease.name.slice(SHARD_PREFIX.length)), lease]));
    const mine: number[] = [];
    const free: number[] = [];
    for (let shard = 0; shard < SHARD_COUNT; shard++) {
      const lease = byShard.get(shard);
      if (lease?.holder === holder && lease.live) mine.push(shard);
      else if (!lease?.live) free.push(shard);
    }
    const release: number[] = [];
    if (mine.length > fairShare) {
      for (const shard of [...mine].reverse()) {
        if (mine.length - release.length <= fairShare) break;
        if (this.options.canRelease(shard)) release.push(shard);
      }
    }
    const keep = mine.filter((shard) => !release.includes(shard));
    const take = free.slice(0, Math.max(0, fairShare - keep.length));
    if (release.length > 0) {
      await releaseLeases(db, { names: release.map(shardLeaseName), holder });
    }
    const granted = await acquireLeases(db, {
      names: [...keep, ...take].map(shardLeaseName),
      holder,
      ttlMs,
    });
    const now = new Set(granted.map((name) => Number(name.slice(SHARD_PREFIX.length))));
    // A held set that lapsed (no heartbeat succeeded within its deadline, e.g. the database was down) was owned by
    // nobody meanwhile: everything granted now is acquired anew, so the caller recovers and reconciles it.
    const previous = this.held;
    const before = this.clock() < this.validUntil ? previous : new Set<number>();
    this.held = now;
    this.validUntil = startedAt + Math.floor(ttlMs * 0.8);
    const result: HeartbeatResult = {
      held: [...now].sort((a, b) => a - b),
      acquired: [...now].filter((shard) => !before.has(shard)),
      lost: [...previous].filter((shard) => !now.has(shard) && !release.includes(shard)),
      released: release,
      liveServers,
    };
    if (result.lost.length > 0) {
      this.options.logger.warn({ shards: result.lost, holder }, "control: lost shard leases");
    }
    return result;
  }

  /** Gives up every lease of this server (graceful stop), so others take over without waiting for expiry. */
  async releaseAll(): Promise<void> {
    const { holder } = this.options;
    const db = this.options.database.db;
    const names = [...this.held].map(shardLeaseName);
    this.held = new Set();
    this.validUntil = 0;
    await releaseLeases(db, { names: [...names, `${SERVER_PREFIX}${holder}`], holder });
  }
}
