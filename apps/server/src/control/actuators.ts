import { type ActuatorConfig, parseActuatorConfig } from "@proxyscale/core";
import type { Logger } from "@proxyscale/db";
import {
  type Db,
  type ProxyHealth,
  type ProxyRecord,
  setObservedReplicas,
  setProxyHealth,
} from "@proxyscale/db";
import { createActuator } from "../actuators/index.ts";
import type { Actuator, ActuatorDeps, ReplicaCounts } from "../actuators/types.ts";

export type ActuatorFactory = (config: ActuatorConfig, deps: ActuatorDeps) => Promise<Actuator>;

interface Entry {
  fingerprint: string;
  actuator: Promise<Actuator>;
  /** The actuator once built. */
  built?: Actuator;
  unwatch?: () => void;
  /** What was last written to the proxy row from this actuator's observations. */
  written: { replicas: number; health: ProxyHealth; unhealthy: number } | null;
  writing: Promise<void>;
}

export interface ActuatorRegistryOptions {
  db: Db;
  logger: Logger;
  create?: ActuatorFactory;
  /** Where `local` workers push their metrics (URL and a token for the proxy's owner), when the server knows. */
  metricsReporting?: (proxy: ProxyRecord) => Promise<ActuatorDeps["metricsReporting"]>;
  /** A `local` proxy's front holds requests while at 0 and calls this to have it scaled from 0 at once. */
  onColdStart?: (proxyId: string) => void;
}

export function healthOf(counts: ReplicaCounts): ProxyHealth {
  if (counts.unhealthyReplicas === 0) return "healthy";
  return counts.readyReplicas === 0 ? "unhealthy" : "degraded";
}

/** Whether the kind can see replicas that it did not start itself (else it only repeats what it last set). */
export function observesReplicas(config: ActuatorConfig): boolean {
  switch (config.kind) {
    case "none":
      return false;
    case "webhook":
      return config.statusUrl !== undefined;
    case "command":
      return config.getReplicasCommand !== undefined;
    case "local":
    case "kubernetes":
      return true;
  }
}

export function parseProxyActuator(proxy: ProxyRecord): ActuatorConfig {
  return parseActuatorConfig({ ...proxy.actuator.config, kind: proxy.actuator.kind });
}

/**
 * One actuator per proxy, built from its config through the real factory and cached until the config changes
 * (then the old one is closed: a `local` proxy's workers drain). Observations (watch events, getReplicas) are
 * written to the proxy row, so `currentReplicas` and `health` show what the actuator sees.
 */
export class ActuatorRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly create: ActuatorFactory;

  constructor(private readonly options: ActuatorRegistryOptions) {
    this.create = options.create ?? createActuator;
  }

  has(proxyId: string): boolean {
    return this.entries.has(proxyId);
  }

  /** The proxies with an actuator here. */
  proxyIds(): string[] {
    return [...this.entries.keys()];
  }

  /** The proxy's actuator, created on first use with the proxy's recorded count as its starting point. */
  async get(proxy: ProxyRecord): Promise<Actuator> {
    const config = parseProxyActuator(proxy);
    const fingerprint = JSON.stringify(config);
    const existing = this.entries.get(proxy.id);
    if (existing?.fingerprint === fingerprint) return existing.actuator;
    if (existing) await this.close(proxy.id);
    const entry: Entry = {
      fingerprint,
      actuator: this.build(proxy, config),
      written: null,
      writing: Promise.resolve(),
    };
    this.entries.set(proxy.id, entry);
    try {
      const actuator = await entry.actuator;
      entry.built = actuator;
      if (actuator.watch) {
        entry.unwatch = actuator.watch((counts) => this.record(proxy.id, counts));
      }
      return actuator;
    } catch (error) {
      if (this.entries.get(proxy.id) === entry) this.entries.delete(proxy.id);
      throw error;
    }
  }

  private async build(proxy: ProxyRecord, config: ActuatorConfig): Promise<Actuator> {
    const metricsReporting =
      config.kind === "local" ? await this.options.metricsReporting?.(proxy) : undefined;
    const onColdStart = this.options.onColdStart;
    return this.create(config, {
      proxyId: proxy.id,
      initialReplicas: proxy.currentReplicas,
      logger: this.options.logger,
      ...(metricsReporting ? { metricsReporting } : {}),
      ...(onColdStart ? { onColdStart: () => onColdStart(proxy.id) } : {}),
    });
  }

  /** Requests the proxy's front holds while at 0, when its actuator runs here and has a front. */
  heldRequests(proxyId: string): number | undefined {
    return this.entries.get(proxyId)?.built?.heldRequests?.();
  }

  /**
   * Asks the actuator what runs and writes it to the proxy row when it differs from what was last written.
   * Returns the counts.
   */
  async observe(proxy: ProxyRecord): Promise<ReplicaCounts> {
    const actuator = await this.get(proxy);
    const counts = await actuator.getReplicas();
    await this.record(proxy.id, counts, proxy);
    return counts;
  }

  /** Writes observed counts to the proxy row, in arrival order, skipping what is already there. */
  record(proxyId: string, counts: ReplicaCounts, known?: ProxyRecord): Promise<void> {
    const entry = this.entries.get(proxyId);
    const health = healthOf(counts);
    const write = async () => {
      const last =
        entry?.written ??
        (known
          ? { replicas: known.currentReplicas, health: known.health, unhealthy: known.unhealthyReplicas }
          : null);
      const { db } = this.options;
      try {
        if (last?.replicas !== counts.replicas) {
          await setObservedReplicas(db, { id: proxyId, currentReplicas: counts.replicas });
        }
        if (last?.health !== health || last.unhealthy !== counts.unhealthyReplicas) {
          await setProxyHealth(db, { id: proxyId, health, unhealthyReplicas: counts.unhealthyReplicas });
        }
        if (entry) entry.written = { replicas: counts.replicas, health, unhealthy: counts.unhealthyReplicas };
      } catch (error) {
        this.options.logger.warn(
          { proxyId, err: error instanceof Error ? error.message : String(error) },
          "control: could not record observed replicas",
        );
      }
    };
    if (!entry) return write();
    entry.writing = entry.writing.then(write);
    return entry.writing;
  }

  /** Notes counts the proxy row already holds (a completed event wrote them), so they are not written again. */
  noteWritten(proxyId: string, replicas: number): void {
    const entry = this.entries.get(proxyId);
    if (entry?.written) entry.written = { ...entry.written, replicas };
  }

  async close(proxyId: string): Promise<void> {
    const entry = this.entries.get(proxyId);
    if (!entry) return;
    this.entries.delete(proxyId);
    entry.unwatch?.();
    try {
      const actuator = await entry.actuator;
      await actuator.close();
    } catch (error) {
      this.options.logger.warn(
        { proxyId, err: error instanceof Error ? error.message : String(error) },
        "control: closing an actuator failed",
      );
    }
    await entry.writing;
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.entries.keys()].map((proxyId) => this.close(proxyId)));
  }
}
