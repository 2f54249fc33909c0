-- Hand-written: decisions stored before core's `mode` limit carried a dry run as { "kind": "dryRun" } (no counts).
-- It is now { "kind": "mode", "mode": "dryRun", "from": n, "to": n }: a dry run keeps the count, so n is the
-- decision's desiredReplicas. Rewritten so every stored decision matches core's decisionSchema, which the
-- decisions endpoint checks its answers against.
UPDATE "scaling_decisions" SET "decision" = jsonb_set("decision", '{limits}', (
  SELECT jsonb_agg(CASE WHEN "limit"->>'kind' = 'dryRun'
    THEN jsonb_build_object('kind', 'mode', 'mode', 'dryRun',
      'from', "decision"->'desiredReplicas', 'to', "decision"->'desiredReplicas')
    ELSE "limit" END ORDER BY "position")
  FROM jsonb_array_elements("decision"->'limits') WITH ORDINALITY AS "limits"("limit", "position")))
WHERE "decision"->'limits' @> '[{"kind": "dryRun"}]';
--> statement-breakpoint
UPDATE "proxy_scaling_history" SET "decision" = jsonb_set("decision", '{limits}', (
  SELECT jsonb_agg(CASE WHEN "limit"->>'kind' = 'dryRun'
    THEN jsonb_build_object('kind', 'mode', 'mode', 'dryRun',
      'from', "decision"->'desiredReplicas', 'to', "decision"->'desiredReplicas')
    ELSE "limit" END ORDER BY "position")
  FROM jsonb_array_elements("decision"->'limits') WITH ORDINALITY AS "limits"("limit", "position")))
WHERE "decision"->'limits' @> '[{"kind": "dryRun"}]';
