import { NavLink } from "react-router";
import { useCan } from "../session.ts";

/** The proxy's pages; the editing ones only for the roles that may use them (the server enforces it too). */
export function ProxyTabs({ proxyId }: { proxyId: string }) {
  const canOperate = useCan("operator");
  const canEdit = useCan("admin");
  return (
    <nav className="tabs" aria-label="Proxy pages">
      <NavLink to={`/proxies/${proxyId}`} end>
        Overview
      </NavLink>
      {canEdit ? <NavLink to={`/proxies/${proxyId}/policy`}>Policy</NavLink> : null}
      {canOperate ? <NavLink to={`/proxies/${proxyId}/operate`}>Operate</NavLink> : null}
      <NavLink to={`/simulate?proxy=${proxyId}`}>Simulate</NavLink>
      <NavLink to={`/audit?proxy=${proxyId}`}>Audit</NavLink>
    </nav>
  );
}
