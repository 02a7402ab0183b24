/**
 * The Stately forwarder speaks @statelyai/inspect's WebSocket protocol: a local server stands in
 * for Stately's inspector and must receive the actor system's events.
 */
import assert from "node:assert/strict";
import { createActor, setup } from "xstate";
import { statelyForwarder } from "../../actors/stately.ts";

Deno.test("stately forwarder: refuses non-loopback and non-ws URLs", () => {
  assert.throws(() => statelyForwarder("ws://10.0.0.1:9000"), /loopback/);
  assert.throws(() => statelyForwarder("http://127.0.0.1:9000"), /ws:\/\//);
});

Deno.test("stately forwarder: an inspector on a local WebSocket receives actor, event and snapshot events", async () => {
  const received: { type?: string }[] = [];
  let sawSnapshot!: () => void;
  const done = new Promise<void>((resolve) => (sawSnapshot = resolve));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (m) => {
      const event = JSON.parse(String(m.data));
      received.push(event);
      if (event.type === "@xstate.snapshot" && event.snapshot?.value === "done") sawSnapshot();
    };
    return response;
  });
  const machine = setup({}).createMachine({
    id: "probe",
    initial: "idle",
    states: { idle: { on: { go: "done" } }, done: {} },
  });
  const stately = statelyForwarder(`ws://127.0.0.1:${server.addr.port}`);
  try {
    const actor = createActor(machine, { inspect: (ev) => stately.observe(ev) }).start();
    actor.send({ type: "go" });
    const timeout = setTimeout(() => sawSnapshot(), 10_000);
    await done;
    clearTimeout(timeout);
    const types = new Set(received.map((e) => e.type));
    assert.ok(types.has("@xstate.actor"), [...types].join(","));
    assert.ok(types.has("@xstate.event"), [...types].join(","));
    assert.ok(types.has("@xstate.snapshot"), [...types].join(","));
    actor.stop();
  } finally {
    stately.stop();
    await server.shutdown();
  }
});
