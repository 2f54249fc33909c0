ALTER TABLE "environment_scaling_policies" DROP CONSTRAINT "environment_scaling_policies_strategy_valid";--> statement-breakpoint
ALTER TABLE "environment_scaling_policies" DROP CONSTRAINT "environment_scaling_policies_mode_valid";--> statement-breakpoint
ALTER TABLE "proxy_scaling_policies" DROP CONSTRAINT "proxy_scaling_policies_strategy_valid";--> statement-breakpoint
ALTER TABLE "proxy_scaling_policies" DROP CONSTRAINT "proxy_scaling_policies_mode_valid";--> statement-breakpoint
ALTER TABLE "scaling_decisions" DROP CONSTRAINT "scaling_decisions_strategy_valid";--> statement-breakpoint
ALTER TABLE "environment_scaling_policies" ADD CONSTRAINT "environment_scaling_policies_strategy_valid" CHECK ("environment_scaling_policies"."strategy" in ('threshold', 'targetTracking', 'step', 'predictive'));--> statement-breakpoint
ALTER TABLE "environment_scaling_policies" ADD CONSTRAINT "environment_scaling_policies_mode_valid" CHECK ("environment_scaling_policies"."mode" in ('auto', 'dryRun', 'forecastOnly', 'off'));--> statement-breakpoint
ALTER TABLE "proxy_scaling_policies" ADD CONSTRAINT "proxy_scaling_policies_strategy_valid" CHECK ("proxy_scaling_policies"."strategy" in ('threshold', 'targetTracking', 'step', 'predictive'));--> statement-breakpoint
ALTER TABLE "proxy_scaling_policies" ADD CONSTRAINT "proxy_scaling_policies_mode_valid" CHECK ("proxy_scaling_policies"."mode" in ('auto', 'dryRun', 'forecastOnly', 'off'));--> statement-breakpoint
ALTER TABLE "scaling_decisions" ADD CONSTRAINT "scaling_decisions_strategy_valid" CHECK ("scaling_decisions"."strategy" in ('threshold', 'targetTracking', 'step', 'predictive'));