import { randomUUID } from "node:crypto";
import type { Decision, ScalingTrigger } from "@proxyscale/core";
import {
  acquireLeases,
  type Database,
  type Db,
  getDecisionsWithOwner,
  getProxyOwners,
  getScalingEventsWithOwner,
  LIVE_PAYLOAD_MAX_BYTES,
  type Logger,
  listenLive,
  listLeases,
  notifyLive,
  releaseLeases,
  type ScalingEventRecord,
  type Telemetry,
} from "@proxyscale/db";

/**
 * The live feed behind `live.onChange`: the Telemetry hooks (a decision stored, a scaling event's transition, a
 * sample stored) turned into an in-process bus with a bounded queue per subscriber. Changes made on another
 * server of the same schema arrive through PostgreSQL's LISTEN/NOTIFY: a server sends what it saw, batched, as
 * kinds and ids (decisions, events) or small values (samples), while another server has subscribers; that one
 * reads the named records and delivers them. A server with subscribers says so with a `live:<server>` lease row,
 * which the others look for every second — so a fleet nobody watches sends nothing (NOTIFY for every push cost
 * the push path about 30% of its throughput). PGlite is one server, so local delivery is all there is.
 */

/** One change, as `live.onChange` yields it (timestamps as ISO strings, as every JSON output carries them). */
export type LiveChange =
  | {
      kind: "decision";
      proxyId: string;
      decisionId: string;
      triggeredBy: ScalingTrigger;
      evaluatedAt: string;
      decision: Decision;
    }
  | { kind: "event"; proxyId: string; event: ScalingEventRecord }
  | { kind: "sample"; proxyId: string; loadScore: number; at: string };

/** Changes a subscriber may hold unread; past it the oldest are dropped (the consumer is that far behind). */
export const DEFAULT_LIVE_BUFFER = 1_000;
/** How long a server gathers changes before sending them to the others in one NOTIFY statement. */
export const DEFAULT_LIVE_FLUSH_MS = 10;
/** How often a server renews its watcher lease (while it has subscribers) and looks for the others'. */
export const DEFAULT_LIVE_WATCH_MS = 1_000;
const WATCH_PREFIX = "live:";
/** A watcher lease outlives a few missed renewals, then lapses (a server that died stops counting). */
const WATCH_TTL_MS = 15_000;

export interface LiveFeedOptions {
  /** Where the records named by other servers, and owners of proxies, are read. */
  db: Db;
  /** With a PostgreSQL database, changes travel between its servers; without one (or on PGlite), stay local. */
  database?: Database;
  logger: Logger;
  bufferSize?: number;
  flushMs?: number;
  watchMs?: number;
  /** Stamps samples (the hook carries none); default Date.now. */
  clock?: () => number;
}

export interface LiveSubscription {
  /** `ownerId`: only that owner's proxies (a non-admin); undefined: every proxy. */
  ownerId?: string;
  proxyId?: string;
  signal?: AbortSignal;
}

export interface LiveFeed {
  /** Publishes what the hooks report (combine it with the server's metrics: combineTelemetry). */
  readonly telemetry: Telemetry;
  /** Starts listening to the other servers (PostgreSQL); a no-op otherwise. */
  start(): Promise<void>;
  /** The changes from now on, until `signal` aborts or the feed closes. */
  subscribe(subscription: LiveSubscription): AsyncGenerator<LiveChange, void, undefined>;
  /** Subscribers right now. */
  subscriberCount(): number;
  /** Whether this server sends its changes to the others now: another server has subscribers. */
  sharesChanges(): boolean;
  /** Ends every subscription, sends what is gathered, stops listening. */
  close(): Promise<void>;
}

/** One notification's item: `d` decision and `e` event by id (read with their owner), `s` a sample by value. */
type Wire =
  | { k: "d"; id: string; p: string }
  | { k: "e"; id: string; p: string }
  | { k: "s"; p: string; l: number; t: string };

/** A change waiting for its owner (events and samples carry none) or its record (another server's). */
type Inbound =
  | { change: LiveChange; ownerId?: string }
  | { ref: "decision" | "event"; id: string; proxyId: string };

interface Subscriber {
  ownerId?: string;
  proxyId?: string;
  queue: LiveChange[];
  dropped: number;
  wake: (() => void) | null;
  closed: boolean;
}

/** The hooks of several Telemetry implementations as one (the server's metrics and the live feed). */
export function combineTelemetry(...parts: Telemetry[]): Telemetry {
  return {
    sampleRecorded: (...args) => {
      for (const part of parts) part.sampleRecorded?.(...args);
    },
    decisionMade: (...args) => {
      for (const part of parts) part.decisionMade?.(...args);
    },
    scalingEventChanged: (...args) => {
      for (const part of parts) part.scalingEventChanged?.(...args);
    },
    proxyRemoved: (...args) => {
      for (const part of parts) part.proxyRemoved?.(...args);
    },
  };
}

/** Owners the feed has seen, bounded (ownership never changes; a removed proxy is forgotten). */
const OWNER_CACHE_MAX = 100_000;

export function createLiveFeed(options: LiveFeedOptions): LiveFeed {
  const { db, database, logger } = options;
  const bufferSize = options.bufferSize ?? DEFAULT_LIVE_BUFFER;
  const flushMs = options.flushMs ?? DEFAULT_LIVE_FLUSH_MS;
  const watchMs = options.watchMs ?? DEFAULT_LIVE_WATCH_MS;
  const clock = options.clock ?? Date.now;
  const shared = database?.driver === "postgres" ? database : undefined;
  const origin = randomUUID();
  const subscribers = new Set<Subscriber>();
  const owners = new Map<string, string>();
  let inbox: Inbound[] = [];
  let draining = false;
  let outbox: Wire[] = [];
  let flushTimer: NodeJS.Timeout | null = null;
  let flushing: Promise<void> = Promise.resolve();
  let listener: { unlisten(): Promise<void> } | null = null;
  let closed = false;
  const watchLease = `${WATCH_PREFIX}${origin}`;
  let othersWatch = false;
  let holdingWatch = false;
  let watchTimer: NodeJS.Timeout | null = null;

  /** Renews (or gives up) this server's watcher lease, and looks whether another server holds one. */
  const watch = async () => {
    if (!shared) return;
    try {
      if (subscribers.size > 0 && !closed) {
        await acquireLeases(shared.db, { names: [watchLease], holder: origin, ttlMs: WATCH_TTL_MS });
        holdingWatch = true;
      } else if (holdingWatch) {
        holdingWatch = false;
        await releaseLeases(shared.db, { names: [watchLease], holder: origin });
      }
      const leases = await listLeases(shared.db, { prefix: WATCH_PREFIX });
      othersWatch = leases.some((lease) => lease.live && lease.holder !== origin);
    } catch (error) {
      logger.warn({ err: (error as Error).message }, "live: watcher leases could not be read");
    }
  };

  const rememberOwner = (proxyId: string, ownerId: string) => {
    if (owners.size >= OWNER_CACHE_MAX) owners.delete(owners.keys().next().value as string);
    owners.set(proxyId, ownerId);
  };

  const deliver = (ownerId: string, change: LiveChange) => {
    for (const subscriber of subscribers) {
      if (subscriber.ownerId !== undefined && subscriber.ownerId !== ownerId) continue;
      if (subscriber.proxyId !== undefined && subscriber.proxyId !== change.proxyId) continue;
      subscriber.queue.push(change);
      if (subscriber.queue.length > bufferSize) {
        subscriber.queue.shift();
        if (subscriber.dropped++ === 0)
          logger.warn({ bufferSize }, "live: a subscriber fell behind; its oldest changes are dropped");
      }
      subscriber.wake?.();
    }
  };

  /** Resolves owners and records for what arrived, then delivers it in arrival order. */
  const drain = async () => {
    while (inbox.length > 0) {
      const batch = inbox;
      inbox = [];
      if (subscribers.size === 0) continue;
      const needOwners = new Set<string>();
      const decisionIds: string[] = [];
      const eventIds: string[] = [];
      for (const item of batch) {
        if ("ref" in item) (item.ref === "decision" ? decisionIds : eventIds).push(item.id);
        else if (item.ownerId === undefined && !owners.has(item.change.proxyId))
          needOwners.add(item.change.proxyId);
      }
      try {
        const [ownerRows, decisions, events] = await Promise.all([
          getProxyOwners(db, [...needOwners]),
          getDecisionsWithOwner(db, decisionIds),
          getScalingEventsWithOwner(db, eventIds),
        ]);
        for (const [proxyId, ownerId] of ownerRows) rememberOwner(proxyId, ownerId);
        const decisionById = new Map(decisions.map((row) => [row.record.id, row]));
        const eventById = new Map(events.map((row) => [row.record.id, row]));
        for (const item of batch) {
          if (!("ref" in item)) {
            const ownerId = item.ownerId ?? owners.get(item.change.proxyId);
            // No owner: the proxy is gone, so no one may see it.
            if (ownerId !== undefined) deliver(ownerId, item.change);
          } else if (item.ref === "decision") {
            const row = decisionById.get(item.id);
            if (row) deliver(row.ownerId, decisionChange(row.record));
          } else {
            const row = eventById.get(item.id);
            if (row) deliver(row.ownerId, { kind: "event", proxyId: row.record.proxyId, event: row.record });
          }
        }
      } catch (error) {
        logger.warn({ err: (error as Error).message }, "live: changes could not be read; they are skipped");
      }
    }
    // Cleared in the same turn as the inbox's last check (the reads above catch their errors), so nothing that
    // arrives waits unseen.
    draining = false;
  };

  const receive = (item: Inbound) => {
    if (closed || subscribers.size === 0) return;
    inbox.push(item);
    if (draining) return;
    draining = true;
    void drain();
  };

  const send = (wire: Wire) => {
    if (!shared || closed || !othersWatch) return;
    outbox.push(wire);
    flushTimer ??= setTimeout(() => {
      flushTimer = null;
      flushing = flushing.then(flush);
    }, flushMs);
  };

  const flush = async () => {
    const items = outbox;
    outbox = [];
    if (!shared || items.length === 0) return;
    try {
      await notifyLive(shared.db, { schema: shared.schema, payloads: packPayloads(origin, items) });
    } catch (error) {
      logger.warn({ err: (error as Error).message, changes: items.length }, "live: notify failed");
    }
  };

  const onPayload = (payload: string) => {
    let message: { s: string; c: Wire[] };
    try {
      message = JSON.parse(payload);
    } catch {
      return;
    }
    if (message.s === origin || !Array.isArray(message.c)) return;
    for (const wire of message.c) {
      if (wire.k === "d") receive({ ref: "decision", id: wire.id, proxyId: wire.p });
      else if (wire.k === "e") receive({ ref: "event", id: wire.id, proxyId: wire.p });
      else if (wire.k === "s")
        receive({ change: { kind: "sample", proxyId: wire.p, loadScore: wire.l, at: wire.t } });
    }
  };

  const telemetry: Telemetry = {
    decisionMade(proxy, decision, stored) {
      rememberOwner(proxy.id, proxy.ownerId);
      receive({
        ownerId: proxy.ownerId,
        change: {
          kind: "decision",
          proxyId: proxy.id,
          decisionId: stored.id,
          triggeredBy: stored.triggeredBy,
          evaluatedAt: new Date(decision.evaluatedAt).toISOString(),
          decision,
        },
      });
      send({ k: "d", id: stored.id, p: proxy.id });
    },
    scalingEventChanged(event) {
      receive({ change: { kind: "event", proxyId: event.proxyId, event } });
      send({ k: "e", id: event.id, p: event.proxyId });
    },
    sampleRecorded(proxyId, loadScore) {
      const at = new Date(clock()).toISOString();
      receive({ change: { kind: "sample", proxyId, loadScore, at } });
      send({ k: "s", p: proxyId, l: loadScore, t: at });
    },
    proxyRemoved(proxyId) {
      owners.delete(proxyId);
    },
  };

  async function* subscribe(subscription: LiveSubscription): AsyncGenerator<LiveChange, void, undefined> {
    const subscriber: Subscriber = {
      ownerId: subscription.ownerId,
      proxyId: subscription.proxyId,
      queue: [],
      dropped: 0,
      wake: null,
      closed,
    };
    const end = () => {
      subscriber.closed = true;
      subscriber.wake?.();
    };
    subscription.signal?.addEventListener("abort", end, { once: true });
    if (subscription.signal?.aborted) end();
    subscribers.add(subscriber);
    // The first subscriber of this server: tell the others now, not at the next renewal.
    if (subscribers.size === 1 && !holdingWatch) void watch();
    try {
      while (!subscriber.closed) {
        const change = subscriber.queue.shift();
        if (change) yield change;
        else
          await new Promise<void>((resolve) => {
            subscriber.wake = resolve;
          });
        subscriber.wake = null;
      }
    } finally {
      subscribers.delete(subscriber);
      subscription.signal?.removeEventListener("abort", end);
    }
  }

  return {
    telemetry,
    async start() {
      if (!shared || listener) return;
      listener = await listenLive(shared, onPayload);
      await watch();
      watchTimer = setInterval(() => void watch(), watchMs);
      watchTimer.unref();
    },
    subscribe,
    subscriberCount: () => subscribers.size,
    sharesChanges: () => othersWatch,
    async close() {
      if (closed) return;
      closed = true;
      for (const subscriber of subscribers) {
        subscriber.closed = true;
        subscriber.wake?.();
      }
      if (flushTimer) {
        clearTimeout(flushTimer);
        flushTimer = null;
        flushing = flushing.then(flush);
      }
      await flushing;
      if (watchTimer) clearInterval(watchTimer);
      watchTimer = null;
      await watch();
      await listener?.unlisten();
      listener = null;
    },
  };
}

function decisionChange(record: {
  id: string;
  proxyId: string;
  triggeredBy: ScalingTrigger;
  evaluatedAt: Date;
  decision: Decision;
}): LiveChange {
  return {
    kind: "decision",
    proxyId: record.proxyId,
    decisionId: record.id,
    triggeredBy: record.triggeredBy,
    evaluatedAt: record.evaluatedAt.toISOString(),
    decision: record.decision,
  };
}

/** The items as few payloads as fit under NOTIFY's limit, each `{"s": origin, "c": [...]}`. */
export function packPayloads(origin: string, items: readonly unknown[]): string[] {
  const head = `{"s":${JSON.stringify(origin)},"c":[`;
  const payloads: string[] = [];
  let parts: string[] = [];
  let bytes = head.length + 2;
  for (const item of items) {
    const json = JSON.stringify(item);
    const size = Buffer.byteLength(json) + 1;
    if (parts.length > 0 && bytes + size > LIVE_PAYLOAD_MAX_BYTES) {
      payloads.push(`${head}${parts.join(",")}]}`);
      parts = [];
      bytes = head.length + 2;
    }
    parts.push(json);
    bytes += size;
  }
  if (parts.length > 0) payloads.push(`${head}${parts.join(",")}]}`);
  return payloads;
}
