CREATE TABLE "audit_log" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"actor_id" text NOT NULL,
	"action" text NOT NULL,
	"entity_type" text NOT NULL,
	"entity_id" text NOT NULL,
	"before" jsonb,
	"after" jsonb,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "audit_log_action_not_blank" CHECK (length("audit_log"."action") > 0)
);
--> statement-breakpoint
CREATE TABLE "leases" (
	"name" text PRIMARY KEY NOT NULL,
	"holder" text NOT NULL,
	"acquired_at" timestamp (3) with time zone NOT NULL,
	"expires_at" timestamp (3) with time zone NOT NULL,
	CONSTRAINT "leases_expiry_after_acquire" CHECK ("leases"."expires_at" > "leases"."acquired_at")
);
--> statement-breakpoint
CREATE TABLE "metric_rollup_state" (
	"name" text PRIMARY KEY NOT NULL,
	"rolled_up_to" timestamp (3) with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "proxy_latest_metrics" (
	"proxy_id" uuid NOT NULL,
	"instance_id" text DEFAULT '' NOT NULL,
	"recorded_at" timestamp (3) with time zone NOT NULL,
	"cpu_percent" double precision NOT NULL,
	"memory_percent" double precision NOT NULL,
	"request_rate" double precision NOT NULL,
	"avg_latency_ms" double precision NOT NULL,
	"error_rate_percent" double precision NOT NULL,
	"load_score" double precision NOT NULL,
	"replicas" integer,
	"unhealthy_replicas" integer,
	"custom" jsonb,
	CONSTRAINT "proxy_latest_metrics_pk" PRIMARY KEY("proxy_id","instance_id"),
	CONSTRAINT "proxy_latest_metrics_percents_valid" CHECK ("proxy_latest_metrics"."cpu_percent" between 0 and 100 and "proxy_latest_metrics"."memory_percent" between 0 and 100 and "proxy_latest_metrics"."error_rate_percent" between 0 and 100),
	CONSTRAINT "proxy_latest_metrics_rates_non_negative" CHECK ("proxy_latest_metrics"."request_rate" >= 0 and "proxy_latest_metrics"."avg_latency_ms" >= 0),
	CONSTRAINT "proxy_latest_metrics_load_score_valid" CHECK ("proxy_latest_metrics"."load_score" between 0 and 100),
	CONSTRAINT "proxy_latest_metrics_replicas_non_negative" CHECK (coalesce("proxy_latest_metrics"."replicas", 0) >= 0 and coalesce("proxy_latest_metrics"."unhealthy_replicas", 0) >= 0)
);
--> statement-breakpoint
CREATE TABLE "proxy_load_metrics" (
	"proxy_id" uuid NOT NULL,
	"instance_id" text DEFAULT '' NOT NULL,
	"recorded_at" timestamp (3) with time zone NOT NULL,
	"cpu_percent" double precision NOT NULL,
	"memory_percent" double precision NOT NULL,
	"request_rate" double precision NOT NULL,
	"avg_latency_ms" double precision NOT NULL,
	"error_rate_percent" double precision NOT NULL,
	"load_score" double precision NOT NULL,
	"replicas" integer,
	"unhealthy_replicas" integer,
	"custom" jsonb,
	CONSTRAINT "proxy_load_metrics_percents_valid" CHECK ("proxy_load_metrics"."cpu_percent" between 0 and 100 and "proxy_load_metrics"."memory_percent" between 0 and 100 and "proxy_load_metrics"."error_rate_percent" between 0 and 100),
	CONSTRAINT "proxy_load_metrics_rates_non_negative" CHECK ("proxy_load_metrics"."request_rate" >= 0 and "proxy_load_metrics"."avg_latency_ms" >= 0),
	CONSTRAINT "proxy_load_metrics_load_score_valid" CHECK ("proxy_load_metrics"."load_score" between 0 and 100),
	CONSTRAINT "proxy_load_metrics_replicas_non_negative" CHECK (coalesce("proxy_load_metrics"."replicas", 0) >= 0 and coalesce("proxy_load_metrics"."unhealthy_replicas", 0) >= 0)
);
--> statement-breakpoint
CREATE TABLE "proxy_load_metrics_1m" (
	"proxy_id" uuid NOT NULL,
	"bucket" timestamp (3) with time zone NOT NULL,
	"samples" integer NOT NULL,
	"cpu_percent_avg" double precision NOT NULL,
	"cpu_percent_max" double precision NOT NULL,
	"memory_percent_avg" double precision NOT NULL,
	"memory_percent_max" double precision NOT NULL,
	"request_rate_avg" double precision NOT NULL,
	"request_rate_max" double precision NOT NULL,
	"avg_latency_ms_avg" double precision NOT NULL,
	"avg_latency_ms_max" double precision NOT NULL,
	"error_rate_percent_avg" double precision NOT NULL,
	"error_rate_percent_max" double precision NOT NULL,
	"load_score_avg" double precision NOT NULL,
	"load_score_max" double precision NOT NULL,
	"replica_samples" integer NOT NULL,
	"replicas_avg" double precision,
	"replicas_max" integer,
	CONSTRAINT "proxy_load_metrics_1m_pk" PRIMARY KEY("proxy_id","bucket"),
	CONSTRAINT "proxy_load_metrics_1m_samples_positive" CHECK ("proxy_load_metrics_1m"."samples" > 0),
	CONSTRAINT "proxy_load_metrics_1m_bucket_minute" CHECK ("proxy_load_metrics_1m"."bucket" = date_trunc('minute', "proxy_load_metrics_1m"."bucket", 'UTC'))
);
--> statement-breakpoint
CREATE TABLE "environment_scaling_policies" (
	"environment" text PRIMARY KEY NOT NULL,
	"min_replicas" integer NOT NULL,
	"max_replicas" integer NOT NULL,
	"target_cpu_percent" double precision NOT NULL,
	"target_memory_percent" double precision NOT NULL,
	"target_request_rate" double precision NOT NULL,
	"scale_up_threshold" double precision NOT NULL,
	"scale_down_threshold" double precision NOT NULL,
	"scale_up_cooldown_seconds" integer NOT NULL,
	"scale_down_cooldown_seconds" integer NOT NULL,
	"strategy" text NOT NULL,
	"mode" text NOT NULL,
	"behavior" jsonb NOT NULL,
	"strategy_settings" jsonb NOT NULL,
	"created_by" text NOT NULL,
	"updated_by" text NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "environment_scaling_policies_environment_not_blank" CHECK (length(trim("environment_scaling_policies"."environment")) > 0),
	CONSTRAINT "environment_scaling_policies_min_replicas_non_negative" CHECK ("environment_scaling_policies"."min_replicas" >= 0),
	CONSTRAINT "environment_scaling_policies_max_replicas_positive" CHECK ("environment_scaling_policies"."max_replicas" >= 1),
	CONSTRAINT "environment_scaling_policies_min_le_max" CHECK ("environment_scaling_policies"."min_replicas" <= "environment_scaling_policies"."max_replicas"),
	CONSTRAINT "environment_scaling_policies_percents_valid" CHECK ("environment_scaling_policies"."target_cpu_percent" > 0 and "environment_scaling_policies"."target_cpu_percent" <= 100 and "environment_scaling_policies"."target_memory_percent" > 0 and "environment_scaling_policies"."target_memory_percent" <= 100 and "environment_scaling_policies"."scale_up_threshold" > 0 and "environment_scaling_policies"."scale_up_threshold" <= 100 and "environment_scaling_policies"."scale_down_threshold" > 0 and "environment_scaling_policies"."scale_down_threshold" <= 100),
	CONSTRAINT "environment_scaling_policies_thresholds_ordered" CHECK ("environment_scaling_policies"."scale_down_threshold" < "environment_scaling_policies"."scale_up_threshold"),
	CONSTRAINT "environment_scaling_policies_target_request_rate_positive" CHECK ("environment_scaling_policies"."target_request_rate" > 0),
	CONSTRAINT "environment_scaling_policies_cooldowns_non_negative" CHECK ("environment_scaling_policies"."scale_up_cooldown_seconds" >= 0 and "environment_scaling_policies"."scale_down_cooldown_seconds" >= 0),
	CONSTRAINT "environment_scaling_policies_strategy_valid" CHECK ("environment_scaling_policies"."strategy" in ('threshold', 'targetTracking', 'step')),
	CONSTRAINT "environment_scaling_policies_mode_valid" CHECK ("environment_scaling_policies"."mode" in ('auto', 'dryRun', 'off'))
);
--> statement-breakpoint
CREATE TABLE "proxy_scaling_policies" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"proxy_id" uuid NOT NULL,
	"owner_id" text NOT NULL,
	"min_replicas" integer NOT NULL,
	"max_replicas" integer NOT NULL,
	"target_cpu_percent" double precision NOT NULL,
	"target_memory_percent" double precision NOT NULL,
	"target_request_rate" double precision NOT NULL,
	"scale_up_threshold" double precision NOT NULL,
	"scale_down_threshold" double precision NOT NULL,
	"scale_up_cooldown_seconds" integer NOT NULL,
	"scale_down_cooldown_seconds" integer NOT NULL,
	"strategy" text NOT NULL,
	"mode" text NOT NULL,
	"behavior" jsonb NOT NULL,
	"strategy_settings" jsonb NOT NULL,
	"created_by" text NOT NULL,
	"updated_by" text NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "proxy_scaling_policies_proxy_unique" UNIQUE("proxy_id"),
	CONSTRAINT "proxy_scaling_policies_min_replicas_non_negative" CHECK ("proxy_scaling_policies"."min_replicas" >= 0),
	CONSTRAINT "proxy_scaling_policies_max_replicas_positive" CHECK ("proxy_scaling_policies"."max_replicas" >= 1),
	CONSTRAINT "proxy_scaling_policies_min_le_max" CHECK ("proxy_scaling_policies"."min_replicas" <= "proxy_scaling_policies"."max_replicas"),
	CONSTRAINT "proxy_scaling_policies_percents_valid" CHECK ("proxy_scaling_policies"."target_cpu_percent" > 0 and "proxy_scaling_policies"."target_cpu_percent" <= 100 and "proxy_scaling_policies"."target_memory_percent" > 0 and "proxy_scaling_policies"."target_memory_percent" <= 100 and "proxy_scaling_policies"."scale_up_threshold" > 0 and "proxy_scaling_policies"."scale_up_threshold" <= 100 and "proxy_scaling_policies"."scale_down_threshold" > 0 and "proxy_scaling_policies"."scale_down_threshold" <= 100),
	CONSTRAINT "proxy_scaling_policies_thresholds_ordered" CHECK ("proxy_scaling_policies"."scale_down_threshold" < "proxy_scaling_policies"."scale_up_threshold"),
	CONSTRAINT "proxy_scaling_policies_target_request_rate_positive" CHECK ("proxy_scaling_policies"."target_request_rate" > 0),
	CONSTRAINT "proxy_scaling_policies_cooldowns_non_negative" CHECK ("proxy_scaling_policies"."scale_up_cooldown_seconds" >= 0 and "proxy_scaling_policies"."scale_down_cooldown_seconds" >= 0),
	CONSTRAINT "proxy_scaling_policies_strategy_valid" CHECK ("proxy_scaling_policies"."strategy" in ('threshold', 'targetTracking', 'step')),
	CONSTRAINT "proxy_scaling_policies_mode_valid" CHECK ("proxy_scaling_policies"."mode" in ('auto', 'dryRun', 'off'))
);
--> statement-breakpoint
CREATE TABLE "proxies" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"owner_id" text NOT NULL,
	"name" text NOT NULL,
	"environment" text DEFAULT 'production' NOT NULL,
	"region" text,
	"actuator_kind" text DEFAULT 'none' NOT NULL,
	"actuator_config" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"current_replicas" integer DEFAULT 0 NOT NULL,
	"desired_replicas" integer DEFAULT 0 NOT NULL,
	"health" text DEFAULT 'healthy' NOT NULL,
	"unhealthy_replicas" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "proxies_owner_name_unique" UNIQUE("owner_id","name"),
	CONSTRAINT "proxies_name_not_blank" CHECK (length(trim("proxies"."name")) > 0),
	CONSTRAINT "proxies_environment_not_blank" CHECK (length(trim("proxies"."environment")) > 0),
	CONSTRAINT "proxies_actuator_kind_valid" CHECK ("proxies"."actuator_kind" in ('none', 'local', 'kubernetes', 'webhook', 'command')),
	CONSTRAINT "proxies_health_valid" CHECK ("proxies"."health" in ('healthy', 'degraded', 'unhealthy')),
	CONSTRAINT "proxies_current_replicas_non_negative" CHECK ("proxies"."current_replicas" >= 0),
	CONSTRAINT "proxies_desired_replicas_non_negative" CHECK ("proxies"."desired_replicas" >= 0),
	CONSTRAINT "proxies_unhealthy_replicas_non_negative" CHECK ("proxies"."unhealthy_replicas" >= 0)
);
--> statement-breakpoint
CREATE TABLE "proxy_scaling_events" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"proxy_id" uuid NOT NULL,
	"event_type" text NOT NULL,
	"previous_replicas" integer NOT NULL,
	"new_replicas" integer NOT NULL,
	"triggered_by" text NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"reason" text DEFAULT '' NOT NULL,
	"error" text,
	"decision_id" uuid,
	"created_by" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp (3) with time zone,
	"completed_at" timestamp (3) with time zone,
	"duration_ms" integer,
	CONSTRAINT "proxy_scaling_events_event_type_valid" CHECK ("proxy_scaling_events"."event_type" in ('scale_up', 'scale_down')),
	CONSTRAINT "proxy_scaling_events_triggered_by_valid" CHECK ("proxy_scaling_events"."triggered_by" in ('auto', 'manual', 'admin')),
	CONSTRAINT "proxy_scaling_events_status_valid" CHECK ("proxy_scaling_events"."status" in ('pending', 'in_progress', 'completed', 'failed', 'cancelled')),
	CONSTRAINT "proxy_scaling_events_replicas_non_negative" CHECK ("proxy_scaling_events"."previous_replicas" >= 0 and "proxy_scaling_events"."new_replicas" >= 0),
	CONSTRAINT "proxy_scaling_events_direction_matches_type" CHECK (("proxy_scaling_events"."event_type" = 'scale_up' and "proxy_scaling_events"."new_replicas" > "proxy_scaling_events"."previous_replicas") or ("proxy_scaling_events"."event_type" = 'scale_down' and "proxy_scaling_events"."new_replicas" < "proxy_scaling_events"."previous_replicas")),
	CONSTRAINT "proxy_scaling_events_started_when_running" CHECK ("proxy_scaling_events"."status" <> 'in_progress' or "proxy_scaling_events"."started_at" is not null),
	CONSTRAINT "proxy_scaling_events_completed_when_finished" CHECK (("proxy_scaling_events"."status" in ('completed', 'failed', 'cancelled')) = ("proxy_scaling_events"."completed_at" is not null)),
	CONSTRAINT "proxy_scaling_events_error_when_failed" CHECK (("proxy_scaling_events"."status" = 'failed') = ("proxy_scaling_events"."error" is not null)),
	CONSTRAINT "proxy_scaling_events_duration_non_negative" CHECK (coalesce("proxy_scaling_events"."duration_ms", 0) >= 0)
);
--> statement-breakpoint
CREATE TABLE "proxy_scaling_history" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"event_id" uuid NOT NULL,
	"proxy_id" uuid NOT NULL,
	"recorded_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"previous_replicas" integer NOT NULL,
	"new_replicas" integer NOT NULL,
	"load_score" double precision,
	"metrics" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"decision" jsonb,
	CONSTRAINT "proxy_scaling_history_replicas_non_negative" CHECK ("proxy_scaling_history"."previous_replicas" >= 0 and "proxy_scaling_history"."new_replicas" >= 0)
);
--> statement-breakpoint
CREATE TABLE "scaling_decisions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"proxy_id" uuid NOT NULL,
	"evaluated_at" timestamp (3) with time zone NOT NULL,
	"triggered_by" text NOT NULL,
	"strategy" text NOT NULL,
	"action" text NOT NULL,
	"current_replicas" integer NOT NULL,
	"recommended_replicas" integer NOT NULL,
	"desired_replicas" integer NOT NULL,
	"load_score" double precision,
	"explanation" text NOT NULL,
	"decision" jsonb NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "scaling_decisions_triggered_by_valid" CHECK ("scaling_decisions"."triggered_by" in ('auto', 'manual', 'admin')),
	CONSTRAINT "scaling_decisions_strategy_valid" CHECK ("scaling_decisions"."strategy" in ('threshold', 'targetTracking', 'step')),
	CONSTRAINT "scaling_decisions_action_valid" CHECK ("scaling_decisions"."action" in ('scale_up', 'scale_down', 'none')),
	CONSTRAINT "scaling_decisions_replicas_non_negative" CHECK ("scaling_decisions"."current_replicas" >= 0 and "scaling_decisions"."recommended_replicas" >= 0 and "scaling_decisions"."desired_replicas" >= 0)
);
--> statement-breakpoint
ALTER TABLE "proxy_latest_metrics" ADD CONSTRAINT "proxy_latest_metrics_proxy_id_proxies_id_fk" FOREIGN KEY ("proxy_id") REFERENCES "public"."proxies"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "proxy_load_metrics" ADD CONSTRAINT "proxy_load_metrics_proxy_id_proxies_id_fk" FOREIGN KEY ("proxy_id") REFERENCES "public"."proxies"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "proxy_load_metrics_1m" ADD CONSTRAINT "proxy_load_metrics_1m_proxy_id_proxies_id_fk" FOREIGN KEY ("proxy_id") REFERENCES "public"."proxies"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "proxy_scaling_policies" ADD CONSTRAINT "proxy_scaling_policies_proxy_id_proxies_id_fk" FOREIGN KEY ("proxy_id") REFERENCES "public"."proxies"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "proxy_scaling_events" ADD CONSTRAINT "proxy_scaling_events_proxy_id_proxies_id_fk" FOREIGN KEY ("proxy_id") REFERENCES "public"."proxies"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "proxy_scaling_events" ADD CONSTRAINT "proxy_scaling_events_decision_id_scaling_decisions_id_fk" FOREIGN KEY ("decision_id") REFERENCES "public"."scaling_decisions"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "proxy_scaling_history" ADD CONSTRAINT "proxy_scaling_history_event_id_proxy_scaling_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."proxy_scaling_events"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "proxy_scaling_history" ADD CONSTRAINT "proxy_scaling_history_proxy_id_proxies_id_fk" FOREIGN KEY ("proxy_id") REFERENCES "public"."proxies"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "scaling_decisions" ADD CONSTRAINT "scaling_decisions_proxy_id_proxies_id_fk" FOREIGN KEY ("proxy_id") REFERENCES "public"."proxies"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "audit_log_time_idx" ON "audit_log" USING btree ("created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "audit_log_entity_time_idx" ON "audit_log" USING btree ("entity_id","created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "audit_log_actor_time_idx" ON "audit_log" USING btree ("actor_id","created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "proxy_load_metrics_proxy_time_idx" ON "proxy_load_metrics" USING btree ("proxy_id","recorded_at" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "proxy_load_metrics_time_brin" ON "proxy_load_metrics" USING brin ("recorded_at");--> statement-breakpoint
CREATE INDEX "proxy_load_metrics_1m_bucket_idx" ON "proxy_load_metrics_1m" USING btree ("bucket");--> statement-breakpoint
CREATE INDEX "proxies_owner_created_idx" ON "proxies" USING btree ("owner_id","created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "proxies_created_idx" ON "proxies" USING btree ("created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "proxy_scaling_events_proxy_time_idx" ON "proxy_scaling_events" USING btree ("proxy_id","created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST);--> statement-breakpoint
CREATE UNIQUE INDEX "proxy_scaling_events_one_active_per_proxy" ON "proxy_scaling_events" USING btree ("proxy_id") WHERE "proxy_scaling_events"."status" in ('pending', 'in_progress');--> statement-breakpoint
CREATE INDEX "proxy_scaling_history_proxy_time_idx" ON "proxy_scaling_history" USING btree ("proxy_id","recorded_at" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "proxy_scaling_history_event_idx" ON "proxy_scaling_history" USING btree ("event_id");--> statement-breakpoint
CREATE INDEX "scaling_decisions_proxy_time_idx" ON "scaling_decisions" USING btree ("proxy_id","evaluated_at" DESC NULLS FIRST,"id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "scaling_decisions_time_brin" ON "scaling_decisions" USING brin ("evaluated_at");