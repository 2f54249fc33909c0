/**
 * Response headers every answer carries, in one place: no MIME sniffing, no framing (clickjacking), no referrer.
 * Pages add their own Content-Security-Policy (the admin UI here, the API reference in @proxyscale/api's
 * docs-page.ts); everything else gets one that only forbids framing.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "content-security-policy": "frame-ancestors 'none'",
  "referrer-policy": "no-referrer",
};

/**
 * The admin UI's policy: its own scripts, styles and API only (the live feed's EventSource is same-origin).
 * Inline styles are allowed because uPlot and React position chart and tooltip elements with style attributes;
 * inline scripts, eval and other origins are not.
 */
export const ADMIN_UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");
