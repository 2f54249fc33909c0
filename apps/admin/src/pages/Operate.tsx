import { POLICY_MODES, type PolicyMode } from "@proxyscale/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { Link, useParams } from "react-router";
import { EventsTable } from "../components/EventsTable.tsx";
import { ProxyTabs } from "../components/ProxyTabs.tsx";
import { ErrorState, Loading, QueryView } from "../components/States.tsx";
import { useLiveUpdates } from "../live.ts";
import { useCan, useSession } from "../session.ts";
import { useTRPC } from "../trpc.ts";

const MODE_HELP: Record<PolicyMode, string> = {
  auto: "decide and scale",
  dryRun: "decide and record, never scale",
  forecastOnly: "record forecasts and would-be decisions, never scale",
  off: "pause: hold the current count",
};

export default function OperatePage() {
  const { proxyId = "" } = useParams();
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const session = useSession();
  const canOperate = useCan("operator");
  const isAdmin = useCan("admin");
  useLiveUpdates(proxyId);
  const proxy = useQuery(trpc.proxies.get.queryOptions({ proxyId }));
  const policy = useQuery(trpc.policies.get.queryOptions({ proxyId }));
  const events = useQuery(trpc.scaling.events.queryOptions({ proxyId, limit: 20 }));
  const [count, setCount] = useState("");
  const [reason, setReason] = useState("manual scale");
  const [confirming, setConfirming] = useState(false);
  const scale = useMutation(
    trpc.scaling.execute.mutationOptions({
      onSuccess: () => queryClient.invalidateQueries({ queryKey: trpc.scaling.events.pathKey() }),
    }),
  );
  const setMode = useMutation(
    trpc.policies.upsert.mutationOptions({
      onSuccess: () => queryClient.invalidateQueries({ queryKey: trpc.policies.pathKey() }),
    }),
  );

  if (proxy.error) return <ErrorState error={proxy.error} what="this proxy" />;
  if (!proxy.data) return <Loading what="the proxy" />;
  const target = Number(count);
  const countValid = count.trim() !== "" && Number.isInteger(target) && target >= 0;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (countValid) setConfirming(true);
  };

  return (
    <section aria-labelledby="operate-title">
      <p className="crumbs">
        <Link to="/">Fleet</Link> / <Link to={`/proxies/${proxyId}`}>{proxy.data.name}</Link> / operate
      </p>
      <h1 id="operate-title">Operate {proxy.data.name}</h1>
      <ProxyTabs proxyId={proxyId} />
      <p>
        Now {proxy.data.currentReplicas} replicas ({proxy.data.desiredReplicas} desired).
      </p>
      {!canOperate ? (
        <div className="state" role="note">
          Operating a proxy needs role operator or admin; you are signed in as {session?.claims.role}.
        </div>
      ) : (
        <>
          <h2>Manual scale</h2>
          <form onSubmit={submit} className="inline-form" aria-label="Manual scale">
            <label>
              Replicas
              <input
                type="number"
                min={0}
                step={1}
                required
                value={count}
                aria-invalid={count !== "" && !countValid}
                onChange={(event) => {
                  setCount(event.target.value);
                  setConfirming(false);
                }}
              />
            </label>
            <label>
              Reason
              <input value={reason} onChange={(event) => setReason(event.target.value)} />
            </label>
            <button type="submit" disabled={!countValid || scale.isPending}>
              Scale…
            </button>
          </form>
          {count !== "" && !countValid ? (
            <p className="field-error" role="alert">
              Replicas must be a whole number ≥ 0.
            </p>
          ) : null}
          {confirming ? (
            <div className="confirm" role="alertdialog" aria-labelledby="confirm-text">
              <p id="confirm-text">
                Scale {proxy.data.name} from {proxy.data.currentReplicas} to {target} replicas?
              </p>
              <button
                type="button"
                className="primary"
                onClick={() => {
                  setConfirming(false);
                  scale.mutate({ proxyId, newReplicaCount: target, reason });
                }}
              >
                Confirm scale to {target}
              </button>
              <button type="button" onClick={() => setConfirming(false)}>
                Cancel
              </button>
            </div>
          ) : null}
          {scale.error ? <ErrorState error={scale.error} what="the scale" /> : null}
          {scale.data ? (
            <p className="state success" role="status">
              Event {scale.data.id} created; its status updates below.
            </p>
          ) : null}

          <h2>Mode</h2>
          <QueryView
            query={policy}
            what="the policy"
            render={(data) => (
              <fieldset className="modes">
                <legend>
                  Mode: {data.policy.mode}
                  {isAdmin ? "" : " (changing it needs role admin: it is part of the policy)"}
                </legend>
                {POLICY_MODES.map((mode) => (
                  <label key={mode}>
                    <input
                      type="radio"
                      name="mode"
                      value={mode}
                      checked={data.policy.mode === mode}
                      disabled={!isAdmin || setMode.isPending}
                      onChange={() => setMode.mutate({ proxyId, ...data.policy, mode })}
                    />
                    {mode} — {MODE_HELP[mode]}
                  </label>
                ))}
              </fieldset>
            )}
          />
          {setMode.error ? <ErrorState error={setMode.error} what="the mode" /> : null}
        </>
      )}
      <h2>Recent scaling events</h2>
      <QueryView
        query={events}
        what="the scaling events"
        render={(data) => <EventsTable events={data.items} />}
      />
    </section>
  );
}
