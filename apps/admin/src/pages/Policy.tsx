import { DEFAULT_POLICY } from "@proxyscale/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useParams } from "react-router";
import { DecisionChain } from "../components/DecisionChain.tsx";
import { ProxyTabs } from "../components/ProxyTabs.tsx";
import { ErrorState, Loading } from "../components/States.tsx";
import { useCan, useSession } from "../session.ts";
import { statusOf, useTRPC } from "../trpc.ts";
import { fieldOf } from "./policy/form.ts";
import { PolicyForm } from "./policy/PolicyForm.tsx";

export default function PolicyPage() {
  const { proxyId = "" } = useParams();
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const session = useSession();
  const isAdmin = useCan("admin");
  const canEvaluate = useCan("operator");
  const proxy = useQuery(trpc.proxies.get.queryOptions({ proxyId }));
  const policy = useQuery(trpc.policies.get.queryOptions({ proxyId }));
  const presets = useQuery(trpc.policies.listPresets.queryOptions({}));
  const environment = proxy.data?.environment ?? "";
  const environmentPolicy = useQuery({
    ...trpc.policies.getEnvironment.queryOptions({ environment }),
    enabled: environment !== "",
  });
  const save = useMutation(
    trpc.policies.upsert.mutationOptions({
      onSuccess: () => queryClient.invalidateQueries({ queryKey: trpc.policies.pathKey() }),
    }),
  );
  const preview = useMutation(trpc.scaling.evaluate.mutationOptions());

  if (proxy.error) return <ErrorState error={proxy.error} what="this proxy" />;
  if (policy.error) return <ErrorState error={policy.error} what="the policy" />;
  if (presets.error) return <ErrorState error={presets.error} what="the presets" />;
  // No environment default is a 404: the global default applies.
  const environmentMissing = statusOf(environmentPolicy.error) === 404;
  if (environmentPolicy.error && !environmentMissing)
    return <ErrorState error={environmentPolicy.error} what="the environment's default policy" />;
  if (!proxy.data || !policy.data || !presets.data || (!environmentPolicy.data && !environmentMissing))
    return <Loading what="the policy" />;

  const inherited = environmentPolicy.data
    ? { policy: environmentPolicy.data.policy, from: `environment ${environment}` }
    : { policy: DEFAULT_POLICY, from: "global default" };
  const serverErrors: Record<string, string[]> = {};
  for (const issue of save.error?.data?.zodIssues ?? []) {
    const field = fieldOf(issue.path);
    serverErrors[field] = [...(serverErrors[field] ?? []), issue.message];
  }

  return (
    <section aria-labelledby="policy-title">
      <p className="crumbs">
        <Link to="/">Fleet</Link> / <Link to={`/proxies/${proxyId}`}>{proxy.data.name}</Link> / policy
      </p>
      <h1 id="policy-title">Policy of {proxy.data.name}</h1>
      <ProxyTabs proxyId={proxyId} />
      <p>
        In force:{" "}
        {policy.data.source === "proxy"
          ? "the proxy's own policy"
          : `inherited from the ${policy.data.source}`}
        .
      </p>
      {!isAdmin ? (
        <div className="state" role="note">
          Editing policies needs role admin; you are signed in as {session?.claims.role}.
        </div>
      ) : (
        <>
          {save.isSuccess ? (
            <p className="state success" role="status">
              Saved: the proxy's own policy is now in force.
            </p>
          ) : null}
          {save.error && !save.error.data?.zodIssues ? (
            <ErrorState error={save.error} what="the saved policy" />
          ) : null}
          <PolicyForm
            // A new saved policy restarts the form from it.
            key={JSON.stringify(policy.data.policy)}
            saved={policy.data.policy}
            inherited={inherited}
            presets={presets.data.presets}
            saving={save.isPending}
            serverErrors={serverErrors}
            onSave={(next) => save.mutate({ proxyId, ...next })}
          />
        </>
      )}
      {canEvaluate ? (
        <section aria-labelledby="preview-title" className="preview">
          <h2 id="preview-title">What would it do now?</h2>
          <p>
            Runs the engine on the proxy's current state with the saved policy. It records the decision and
            never scales.
          </p>
          <button type="button" onClick={() => preview.mutate({ proxyId })} disabled={preview.isPending}>
            {preview.isPending ? "Evaluating…" : "Evaluate now"}
          </button>
          {preview.error ? <ErrorState error={preview.error} what="the evaluation" /> : null}
          {preview.data ? <DecisionChain decision={preview.data} /> : null}
        </section>
      ) : null}
    </section>
  );
}
