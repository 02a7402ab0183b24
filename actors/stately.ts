/**
 * Optional: forward every inspection event of the daemon's actor system to a Stately inspector
 * (`npm:@statelyai/inspect`) listening on a WebSocket, so users who already use Stately's tools
 * can attach them to a running daemon. Off unless a URL is given (`ostk listen
 * --stately-inspect ws://127.0.0.1:PORT` or `OSTK_STATELY_INSPECT`).
 */
import { createWebSocketInspector } from "@statelyai/inspect";
import type { InspectionEvent } from "xstate";

/** What the daemon calls for each inspection event, and on shutdown. */
export interface StatelyForwarder {
  observe(event: InspectionEvent): void;
  stop(): void;
}

/**
 * Connect to a Stately inspector at `url` (loopback only, like every other ostk listener).
 *
 * @example
 * ```ts ignore
 * const stately = statelyForwarder("ws://127.0.0.1:8080");
 * createActor(machine, { inspect: (ev) => stately.observe(ev) }).start();
 * ```
 */
export function statelyForwarder(url: string): StatelyForwarder {
  const parsed = new URL(url);
  if (!["ws:", "wss:"].includes(parsed.protocol)) {
    throw new TypeError(`expected a ws:// URL for the Stately inspector, got ${url}`);
  }
  if (!["127.0.0.1", "localhost", "[::1]"].includes(parsed.hostname)) {
    throw new TypeError(`the Stately inspector must be on loopback, got ${parsed.hostname}`);
  }
  const inspector = createWebSocketInspector({ url, autoStart: true });
  const target = inspector.inspect as unknown as
    | ((event: InspectionEvent) => void)
    | { next?: (event: InspectionEvent) => void };
  return {
    observe(event) {
      if (typeof target === "function") target(event);
      else target.next?.(event);
    },
    stop() {
      inspector.stop();
    },
  };
}
