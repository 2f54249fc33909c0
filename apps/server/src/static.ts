import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join, normalize, resolve, sep } from "node:path";
import { ADMIN_UI_CSP } from "./headers.ts";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".map": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

/**
 * Serves a built single-page app: files by path, and index.html for any other extension-less path
 * (client-side routes). Resolves false when nothing matches, so the caller answers 404.
 */
export function createStaticHandler(root: string) {
  const base = resolve(root);
  return async (req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> => {
    let relative: string;
    try {
      relative = normalize(decodeURIComponent(pathname)).replace(/^([/\\])+/, "");
    } catch {
      return false;
    }
    const candidates = [join(base, relative || "index.html")];
    if (!extname(relative)) candidates.push(join(base, "index.html"));
    for (const file of candidates) {
      if (file !== base && !file.startsWith(base + sep)) return false;
      const info = await stat(file).catch(() => null);
      if (!info?.isFile()) continue;
      const immutable = relative.startsWith("assets/");
      res.writeHead(200, {
        "content-type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
        "content-length": info.size,
        "cache-control": immutable ? "public, max-age=31536000, immutable" : "no-cache",
        "content-security-policy": ADMIN_UI_CSP,
      });
      if (req.method === "HEAD") res.end();
      else createReadStream(file).pipe(res);
      return true;
    }
    return false;
  };
}
