import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { useSearchParams } from "react-router";
import { Empty, LoadMore, QueryView } from "../components/States.tsx";
import { Time } from "../components/Time.tsx";
import { pagedQueryOptions, useTRPC, useTRPCClient } from "../trpc.ts";

export default function AuditPage() {
  const trpc = useTRPC();
  const client = useTRPCClient();
  const [params, setParams] = useSearchParams();
  const proxy = params.get("proxy") ?? "";
  const actor = params.get("actor") ?? "";
  const [form, setForm] = useState({ proxy, actor });
  const proxies = useQuery(trpc.proxies.list.queryOptions({ limit: 100 }));
  const filter = { limit: 100, ...(proxy ? { entityId: proxy } : {}), ...(actor ? { actorId: actor } : {}) };
  const audit = useInfiniteQuery(
    pagedQueryOptions(trpc.audit.list.infiniteQueryKey(filter), (cursor) =>
      client.audit.list.query({ ...filter, cursor }),
    ),
  );
  const names = new Map(proxies.data?.items.map((item) => [item.id, item.name]));

  const apply = (event: FormEvent) => {
    event.preventDefault();
    const next = new URLSearchParams();
    if (form.proxy) next.set("proxy", form.proxy);
    if (form.actor.trim()) next.set("actor", form.actor.trim());
    setParams(next);
  };

  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit log</h1>
      <form className="filters" onSubmit={apply} aria-label="Filter the audit log">
        <label>
          Proxy
          <select value={form.proxy} onChange={(event) => setForm({ ...form, proxy: event.target.value })}>
            <option value="">all</option>
            {proxies.data?.items.map((item) => (
              <option key={item.id} value={item.id}>
                {item.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Actor
          <input value={form.actor} onChange={(event) => setForm({ ...form, actor: event.target.value })} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <QueryView
        query={audit}
        what="the audit log"
        render={(data) =>
          data.pages[0]?.items.length === 0 ? (
            <Empty>No audit entries match.</Empty>
          ) : (
            <div className="table-scroll">
              <table data-testid="audit">
                <thead>
                  <tr>
                    <th scope="col">when</th>
                    <th scope="col">actor</th>
                    <th scope="col">action</th>
                    <th scope="col">entity</th>
                    <th scope="col">before</th>
                    <th scope="col">after</th>
                  </tr>
                </thead>
                <tbody>
                  {data.pages
                    .flatMap((page) => page.items)
                    .map((entry) => (
                      <tr key={entry.id}>
                        <td>
                          <Time value={entry.createdAt} />
                        </td>
                        <td>{entry.actorId}</td>
                        <td>{entry.action}</td>
                        <td>
                          {entry.entityType} {names.get(entry.entityId) ?? entry.entityId}
                        </td>
                        <td>
                          <JsonCell value={entry.before} />
                        </td>
                        <td>
                          <JsonCell value={entry.after} />
                        </td>
                      </tr>
                    ))}
                </tbody>
              </table>
              <LoadMore query={audit} what="entries" />
            </div>
          )
        }
      />
    </section>
  );
}

function JsonCell({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <span className="muted">—</span>;
  const text = JSON.stringify(value, null, 1);
  return (
    <details>
      <summary>{text.length > 60 ? `${text.slice(0, 60).replace(/\s+/g, " ")}…` : text}</summary>
      <pre>{text}</pre>
    </details>
  );
}
