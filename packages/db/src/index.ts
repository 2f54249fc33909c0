export {
  type AdvisoryLock,
  type Database,
  DEFAULT_MAINTENANCE_TIMEOUT_MS,
  DEFAULT_PING_TIMEOUT_MS,
  DEFAULT_POOL_MAX,
  DEFAULT_QUERY_TIMEOUT_MS,
  MEMORY_DATA_DIR,
  type OpenDatabaseOptions,
  openDatabase,
  redactUrl,
} from "./connection.ts";
export { type Db, isUuid, queryRows, withTransaction } from "./db.ts";
export {
  CapExceededError,
  ConflictError,
  DatabaseTimeoutError,
  DatabaseUnavailableError,
  DataDirectoryInUseError,
  InvalidInputError,
  isDatabaseUnavailable,
  MigrationError,
  NotFoundError,
  toDatabaseError,
  violatedConstraint,
} from "./errors.ts";
export { MIGRATIONS_FOLDER, migrate, readMigrations } from "./migrate.ts";
export type { Logger, ScalingExecutor, Telemetry } from "./ports.ts";
export { silentLogger } from "./ports.ts";
export * from "./queries/audit.ts";
export * from "./queries/control.ts";
export { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from "./queries/cursor.ts";
export * from "./queries/decisions.ts";
export * from "./queries/demand.ts";
export * from "./queries/events.ts";
export * from "./queries/leases.ts";
export * from "./queries/live.ts";
export {
  type CappedPush,
  DEFAULT_RAW_RETENTION_DAYS,
  DEFAULT_ROLLUP_RETENTION_DAYS,
  type InstanceCap,
  insertCappedSamples,
  insertSamples,
  type LatestSample,
  latestSamples,
  latestSamplesPage,
  MAX_BATCH_ROWS,
  MAX_RANGE_POINTS,
  type MetricsColumns,
  metricsRange,
  type PruneResult,
  pruneMetrics,
  pruneStaleInstances,
  ROLLUP_LATENESS_MINUTES,
  rollupMetrics,
  type SampleInput,
} from "./queries/metrics.ts";
export * from "./queries/observed-state.ts";
export {
  deleteEnvironmentPolicy,
  deletePolicy,
  type EnvironmentPolicyRecord,
  getEffectivePolicies,
  getEffectivePolicy,
  getEnvironmentPolicy,
  getPolicy,
  listEnvironmentPolicies,
  type PolicySource,
  setEnvironmentPolicy,
  upsertPolicy,
} from "./queries/policies.ts";
export {
  type CreateProxyInput,
  countProxies,
  createProxy,
  deleteProxy,
  existingProxyIds,
  getProxy,
  listProxies,
  type ProxyActuator,
  type ProxyPatch,
  type ProxyRecord,
  setObservedReplicas,
  setProxyHealth,
  updateProxy,
} from "./queries/proxies.ts";
export * from "./queries/rate-limits.ts";
export * from "./queries/rollups.ts";
export * from "./queries/spend.ts";
export * from "./queries/summary.ts";
export * from "./records.ts";
export { isRetryableAbort, TRANSACTION_ATTEMPTS, withRetriedTransaction } from "./retry.ts";
export * as schema from "./schema/index.ts";
export {
  ACTIVE_EVENT_STATUSES,
  type HistorySnapshot,
  PROXY_HEALTH,
  type ProxyHealth,
  SCALING_EVENT_STATUSES,
  SCALING_EVENT_TYPES,
  type ScalingEventStatus,
  type ScalingEventType,
} from "./schema/index.ts";
