/**
 * Fixtures for tests across the packages (`@proxyscale/core/testing`); nothing here is used by the product.
 */

/**
 * A replica's HAProxy 2.6 exporter text with `requests` served so far (a counter, every answer a 2xx), one
 * session, 90% idle: what the built-in `haproxy` mapping reads.
 */
export function haproxyExposition(requests: number): string {
  return [
    "haproxy_process_idle_time_percent 90",
    "haproxy_process_start_time_seconds 1700000000",
    'haproxy_frontend_current_sessions{proxy="fe"} 1',
    `haproxy_frontend_http_requests_total{proxy="fe"} ${requests}`,
    `haproxy_frontend_http_responses_total{proxy="fe",code="2xx"} ${requests}`,
    'haproxy_frontend_http_responses_total{proxy="fe",code="5xx"} 0',
    `haproxy_backend_http_requests_total{proxy="be"} ${requests}`,
    'haproxy_backend_response_time_average_seconds{proxy="be"} 0.002',
    "",
  ].join("\n");
}
