ALTER TABLE "scaling_decisions" DROP CONSTRAINT "scaling_decisions_replicas_non_negative";--> statement-breakpoint
ALTER TABLE "scaling_decisions" ADD COLUMN "recommendation_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "scaling_decisions" ADD COLUMN "recommendation_replicas" integer;--> statement-breakpoint
-- Hand-added: existing rows take their recommendation from the stored decision, then the columns become NOT NULL.
UPDATE "scaling_decisions" SET
  "recommendation_at" = coalesce(to_timestamp(("decision"->'recommendation'->>'at')::float8 / 1000), "evaluated_at"),
  "recommendation_replicas" = coalesce(("decision"->'recommendation'->>'replicas')::int, "desired_replicas");--> statement-breakpoint
ALTER TABLE "scaling_decisions" ALTER COLUMN "recommendation_at" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "scaling_decisions" ALTER COLUMN "recommendation_replicas" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "scaling_decisions" ADD CONSTRAINT "scaling_decisions_replicas_non_negative" CHECK ("scaling_decisions"."current_replicas" >= 0 and "scaling_decisions"."recommended_replicas" >= 0 and "scaling_decisions"."desired_replicas" >= 0 and "scaling_decisions"."recommendation_replicas" >= 0);
