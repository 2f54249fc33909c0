CREATE TABLE "scaling_recommendations" (
	"proxy_id" uuid NOT NULL,
	"replicas" integer NOT NULL,
	"recommended_at" timestamp (3) with time zone NOT NULL,
	CONSTRAINT "scaling_recommendations_pk" PRIMARY KEY("proxy_id","replicas"),
	CONSTRAINT "scaling_recommendations_replicas_non_negative" CHECK ("scaling_recommendations"."replicas" >= 0)
);
--> statement-breakpoint
ALTER TABLE "scaling_recommendations" ADD CONSTRAINT "scaling_recommendations_proxy_id_proxies_id_fk" FOREIGN KEY ("proxy_id") REFERENCES "public"."proxies"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
-- Hand-added: the newest recommendation of each replica count from the decisions already stored.
INSERT INTO "scaling_recommendations" ("proxy_id", "replicas", "recommended_at")
SELECT DISTINCT ON ("proxy_id", "recommendation_replicas") "proxy_id", "recommendation_replicas", "recommendation_at"
FROM "scaling_decisions"
ORDER BY "proxy_id", "recommendation_replicas", "recommendation_at" DESC;
