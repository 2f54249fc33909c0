import net from "node:net";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { DatabaseTimeoutError, DatabaseUnavailableError } from "./errors.ts";

/** A connection that closed within this long of being opened was refused (FATAL at startup), not lost. */
const REFUSED_WITHIN_MS = 1_000;
/** Longest wait between refused attempts: as the pool's reconnection backoff. */
const MAX_REFUSED_DELAY_MS = 1_000;

/** The parts of postgres.js's parsed options a socket needs. */
interface SocketTarget {
  host: string[];
  port: number[];
  path?: string | false;
}

export interface PostgresSocketOptions {
  /**
   * A connection that has sent bytes and received none for this long is destroyed with a DatabaseTimeoutError,
   * failing every statement on it (0: never).
   */
  stallMs: number;
  /** True once the pool is closing: no new connection is opened. */
  closing: () => boolean;
}

/**
 * postgres.js's `socket` option (one call per connection attempt): a TCP or unix socket with two guards that
 * postgres.js lacks.
 *
 * - **A dead connection is destroyed.** A frozen server (SIGSTOP) or a black-holed network leaves the socket open:
 *   the kernel acknowledges what is sent, nothing comes back, and postgres.js waits forever, pipelining more
 *   statements onto it. A socket that has sent bytes and received none since, for `stallMs`, is destroyed:
 *   looked at every fifth of `stallMs`, from its writes and its byte counters. Under TLS (postgres.js wraps this
 *   socket and takes over its I/O) only the counters show traffic, and a look that finds bytes both sent and
 *   received counts as answered, so an idle connection is never cut; a stall right after such a look is then
 *   caught at the connection's next write, while the query deadline still answers its caller.
 * - **Refused attempts are spaced out.** A server that refuses a connection at startup (its database dropped,
 *   too many connections) closes it without a socket error, so postgres.js does not back off and retries at once:
 *   LISTEN's reconnection did ~70 attempts a second, each a forked backend, after a DROP DATABASE. An attempt
 *   opened after one that lasted under a second waits 10 ms, 30 ms, … up to 1 s (with jitter).
 */
export function postgresSocket(options: PostgresSocketOptions) {
  let attempt = 0;
  let refusedInARow = 0;
  let last: { socket: net.Socket; openedAt: number } | null = null;
  return async (target: SocketTarget): Promise<net.Socket> => {
    if (last?.socket.destroyed && performance.now() - last.openedAt < REFUSED_WITHIN_MS) refusedInARow += 1;
    else refusedInARow = 0;
    if (refusedInARow > 0) {
      const delay = Math.min(10 * 3 ** (refusedInARow - 1), MAX_REFUSED_DELAY_MS);
      await sleep((0.5 + Math.random() / 2) * delay, undefined, { ref: false });
    }
    if (options.closing()) throw new DatabaseUnavailableError("the connection pool is closed");
    // Several hosts: one after the other, as postgres.js does with its own sockets.
    const index = attempt++ % target.host.length;
    const socket = target.path
      ? net.connect(target.path)
      : net.connect(target.port[index] ?? target.port[0] ?? 5432, target.host[index]);
    last = { socket, openedAt: performance.now() };
    if (options.stallMs > 0) watchForStall(socket, options.stallMs);
    return socket;
  };
}

function watchForStall(socket: net.Socket, stallMs: number): void {
  /** When the oldest write not followed by any byte read was seen, and bytesRead then. */
  let unanswered: { since: number; readMark: number } | null = null;
  const sent = () => {
    // Bytes read since the oldest unanswered write answered it: this write is now the oldest unanswered one.
    if (!unanswered || socket.bytesRead !== unanswered.readMark) {
      unanswered = { since: performance.now(), readMark: socket.bytesRead };
    }
  };
  // postgres.js writes here itself on a plain connection, so the write's moment is exact.
  const write = socket.write;
  socket.write = function (this: net.Socket, ...args: Parameters<net.Socket["write"]>) {
    sent();
    return write.apply(this, args);
  } as net.Socket["write"];
  // Under TLS the TLS socket writes to the handle underneath: only the counters show it.
  let read = 0;
  let written = 0;
  const timer = setInterval(
    () => {
      if (socket.destroyed) {
        clearInterval(timer);
        return;
      }
      const nowRead = socket.bytesRead;
      const nowWritten = socket.bytesWritten;
      if (nowWritten !== written && nowRead === read) sent();
      read = nowRead;
      written = nowWritten;
      if (unanswered && nowRead !== unanswered.readMark) unanswered = null;
      if (unanswered && performance.now() - unanswered.since >= stallMs) {
        clearInterval(timer);
        socket.destroy(new DatabaseTimeoutError(stallMs));
      }
    },
    Math.max(20, Math.floor(stallMs / 5)),
  );
  timer.unref();
}
