import type { OpenAPIObject } from "trpc-to-openapi";

/**
 * A self-contained API reference rendered on the server from the OpenAPI document: no script, no CDN
 * (nothing outside this machine is reachable, and the page must work offline).
 */

/** The reference page's policy: its one inline stylesheet, nothing else — no script runs on it. */
export const DOCS_PAGE_CSP = [
  "default-src 'none'",
  "style-src 'unsafe-inline'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

type Json = Record<string, unknown>;

function resolve(document: OpenAPIObject, schema: unknown, depth = 0): unknown {
  if (depth > 12 || schema === null || typeof schema !== "object") return schema;
  if (Array.isArray(schema)) return schema.map((item) => resolve(document, item, depth + 1));
  const ref = (schema as Json).$ref;
  if (typeof ref === "string" && ref.startsWith("#/components/schemas/")) {
    const name = ref.slice("#/components/schemas/".length);
    return resolve(document, (document.components?.schemas as Json | undefined)?.[name], depth + 1);
  }
  return Object.fromEntries(
    Object.entries(schema).map(([key, value]) => [key, resolve(document, value, depth + 1)]),
  );
}

function schemaBlock(document: OpenAPIObject, schema: unknown): string {
  const text = JSON.stringify(resolve(document, schema), null, 2) ?? "";
  return `<details><summary>schema</summary><pre>${escapeHtml(text)}</pre></details>`;
}

function renderOperation(document: OpenAPIObject, path: string, method: string, operation: Json): string {
  const parameters = (operation.parameters as Json[] | undefined) ?? [];
  const rows = parameters
    .map(
      (parameter) =>
        `<tr><td><code>${escapeHtml(String(parameter.name))}</code></td><td>${escapeHtml(String(parameter.in))}</td>` +
        `<td>${parameter.required ? "required" : "optional"}</td>` +
        `<td><code>${escapeHtml(JSON.stringify(resolve(document, parameter.schema)))}</code></td></tr>`,
    )
    .join("");
  const body = (operation.requestBody as Json | undefined)?.content as Json | undefined;
  const bodySchema = (body?.["application/json"] as Json | undefined)?.schema;
  const responses = Object.entries((operation.responses as Json | undefined) ?? {})
    .map(
      ([code, response]) =>
        `<li><b>${escapeHtml(code)}</b> ${escapeHtml(String((response as Json).description ?? ""))}</li>`,
    )
    .join("");
  const id = `${method}-${path}`.replace(/[^a-zA-Z0-9]+/g, "-");
  return `<section class="op" id="${escapeHtml(id)}">
<h3><span class="method ${escapeHtml(method)}">${escapeHtml(method.toUpperCase())}</span> <code>${escapeHtml(path)}</code></h3>
<p>${escapeHtml(String(operation.summary ?? ""))}</p>
${rows ? `<table><thead><tr><th>parameter</th><th>in</th><th></th><th>schema</th></tr></thead><tbody>${rows}</tbody></table>` : ""}
${bodySchema ? `<h4>Request body (application/json)</h4>${schemaBlock(document, bodySchema)}` : ""}
<h4>Responses</h4><ul>${responses}</ul>
</section>`;
}

export function renderDocsPage(document: OpenAPIObject): string {
  const byTag = new Map<string, string[]>();
  const index: string[] = [];
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const [method, operation] of Object.entries(item as Record<string, Json>)) {
      const tag = ((operation.tags as string[] | undefined) ?? ["other"])[0] ?? "other";
      const html = renderOperation(document, path, method, operation);
      byTag.set(tag, [...(byTag.get(tag) ?? []), html]);
      const id = `${method}-${path}`.replace(/[^a-zA-Z0-9]+/g, "-");
      index.push(
        `<li><a href="#${escapeHtml(id)}">${escapeHtml(method.toUpperCase())} ${escapeHtml(path)}</a></li>`,
      );
    }
  }
  const server = (document.servers?.[0] as { url?: string } | undefined)?.url ?? "";
  const sections = [...byTag.entries()]
    .map(([tag, operations]) => `<h2>${escapeHtml(tag)}</h2>${operations.join("\n")}`)
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(document.info.title)} reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;display:flex;color:#1d2330}
nav{width:300px;flex:none;height:100vh;overflow:auto;position:sticky;top:0;background:#f4f6fa;padding:1rem;box-sizing:border-box;font-size:13px}
nav ul{list-style:none;padding:0}main{padding:1rem 2rem;max-width:960px}
.op{border:1px solid #dde2ea;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
.method{display:inline-block;min-width:4.5em;text-align:center;border-radius:4px;color:#fff;font-size:13px;padding:1px 6px}
.get{background:#2f7d32}.post{background:#1f5fbf}.put{background:#8a5a00}.patch{background:#6b3fa0}.delete{background:#b3261e}
table{border-collapse:collapse}td,th{border:1px solid #dde2ea;padding:2px 8px;text-align:left;font-size:13px}
pre{background:#f4f6fa;padding:.5rem;overflow:auto;font-size:12px}
</style></head>
<body><nav><b>${escapeHtml(document.info.title)} ${escapeHtml(document.info.version)}</b><ul>${index.join("")}</ul></nav>
<main><h1>${escapeHtml(document.info.title)}</h1>
<p>${escapeHtml(document.info.description ?? "")}</p>
<p>Base URL: <code>${escapeHtml(server)}</code> · machine-readable: <a href="${escapeHtml(server)}/openapi.json">openapi.json</a></p>
${sections}
</main></body></html>`;
}
