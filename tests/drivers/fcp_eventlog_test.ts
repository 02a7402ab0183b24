/**
 * The event log (undo, redo, checkpoints, a new event after undo dropping the redo tail) and a
 * session's batch semantics (all or nothing, the failing op named), on a toy list domain.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import {
  defineVerb,
  EventLog,
  type FcpChange,
  type FcpDriver,
  FcpError,
  FcpSession,
  memoryStorage,
} from "../../drivers/fcp/mod.ts";

/** A counter change: adds `n`, and its inverse subtracts it. */
function add(n: number): FcpChange<number> {
  return { prefix: "~", message: `+${n}`, apply: (s) => s + n, revert: (s) => s - n };
}

/** Append events 1..n to a log starting from 0; returns the state (their sum). */
function fill(log: EventLog<number>, ...ns: number[]): number {
  let state = 0;
  for (const n of ns) {
    state = add(n).apply(state);
    log.append({ op: `add ${n}`, change: add(n) });
  }
  return state;
}

Deno.test("event log: undo and redo move the cursor and apply inverses", () => {
  const log = new EventLog<number>();
  assert.equal(log.undo(0), undefined);
  assert.equal(log.redo(0), undefined);
  let s = fill(log, 1, 10, 100);
  assert.equal(s, 111);
  assert.equal(log.cursor, 3);
  s = log.undo(s)!.state;
  s = log.undo(s)!.state;
  assert.equal(s, 1);
  assert.equal(log.cursor, 1);
  assert.equal(log.length, 3);
  assert.ok(log.canRedo && log.canUndo);
  const redone = log.redo(s)!;
  assert.equal(redone.state, 11);
  assert.equal(redone.events[0].op, "add 10");
  assert.deepEqual(log.applied().map((e) => e.op), ["add 1", "add 10"]);
});

Deno.test("event log: a new event after undo drops the redo tail and its checkpoints", () => {
  const log = new EventLog<number>();
  let s = fill(log, 1, 2);
  log.checkpoint("two");
  s = fill(log, 3) + s; // cursor 3
  log.checkpoint("three");
  s = log.undo(s)!.state;
  s = log.undo(s)!.state; // cursor 1
  assert.equal(s, 1);
  const dropped = log.append({ op: "add 50", change: add(50) });
  assert.deepEqual(dropped, { droppedEvents: 2, droppedCheckpoints: ["two", "three"] });
  assert.equal(log.length, 2);
  assert.equal(log.canRedo, false);
  assert.equal(log.redo(51), undefined);
  assert.deepEqual([...log.checkpoints().keys()], []);
});

Deno.test("event log: undo to a checkpoint; unknown and ahead checkpoints are refused", () => {
  const log = new EventLog<number>();
  fill(log, 1);
  assert.equal(log.checkpoint("base"), 1);
  const s = fill(log, 2, 3) + 1;
  const moved = log.undoTo("base", s);
  assert.equal(moved.state, 1);
  assert.deepEqual(moved.events.map((e) => e.op), ["add 3", "add 2"]);
  assert.equal(log.cursor, 1);
  // The checkpoint stays usable and a redo walks forward again.
  assert.equal(log.redo(1)!.state, 3);
  assert.throws(() => log.undoTo("bsae", 3), (err: unknown) => {
    assert.ok(err instanceof FcpError && err.code === "not_found");
    assert.match(err.hint!, /did you mean: base/);
    return true;
  });
  log.checkpoint("later");
  log.undo(3);
  assert.throws(() => log.undoTo("later", 1), /ahead of the cursor/);
});

Deno.test("event log: a failing inverse during undo to leaves the cursor where it was", () => {
  const log = new EventLog<number>();
  log.checkpoint("start");
  fill(log, 1);
  log.append({
    op: "broken",
    change: {
      ...add(2),
      revert: () => {
        throw new Error("no way back");
      },
    },
  });
  assert.throws(() => log.undoTo("start", 3), /no way back/);
  assert.equal(log.cursor, 2);
});

/** A toy driver: the document is a list of words. */
function listDriver(seed: Record<string, string> = {}): FcpDriver<readonly string[]> {
  const item = z.string().min(1).describe("a word");
  return {
    domain: "list",
    verbs: [
      defineVerb({
        name: "add",
        summary: "append a word",
        positionals: { word: item },
        run: (_s: readonly string[], a) => ({
          prefix: "+",
          message: a.word,
          apply: (s) => [...s, a.word],
          revert: (s) => s.slice(0, -1),
        }),
      }),
      defineVerb({
        name: "del",
        summary: "remove a word",
        positionals: { word: item },
        run(s: readonly string[], a) {
          const at = s.indexOf(a.word);
          if (at < 0) {
            throw new FcpError("not_found", `no '${a.word}'`, { hint: `have: ${s.join(", ")}` });
          }
          return {
            prefix: "-",
            message: a.word,
            apply: (t) => t.filter((_, i) => i !== at),
            revert: (t) => [...t.slice(0, at), a.word, ...t.slice(at)],
          };
        },
      }),
    ],
    query: [
      defineVerb({ name: "all", summary: "list", run: (s: readonly string[]) => s.join(" ") }),
    ],
    session: {
      create: () => [],
      decode: (bytes) => JSON.parse(new TextDecoder().decode(bytes)),
      encode: (s) => new TextEncoder().encode(JSON.stringify(s)),
      summary: (s) => `${s.length} words`,
    },
    storage: memoryStorage(seed),
  };
}

Deno.test("batch: an error in op 3 rolls back ops 1-2 and names op 3 and why", async () => {
  const session = new FcpSession(listDriver({ "w.json": '["x"]' }));
  await session.session("open w.json");
  const r = await session.batch(["add a", "add b", "del zz", "add c"]);
  assert.equal(r.ok, false);
  const lines = r.text.split("\n");
  assert.equal(lines[0], "? op 3/4 `del zz`: no 'zz'; have: x, a, b");
  assert.equal(lines[1], "! rolled back ops 1-2; nothing applied");
  assert.match(lines[2], /^state: w\.json · event 0\/0 · saved · 1 words$/);
  assert.deepEqual(session.state, ["x"]);
  // Nothing reached the log: undo has nothing to do.
  assert.match((await session.session("undo")).text, /^! nothing to undo/);
});

Deno.test("batch: errors in op 1 and in parsing are reported the same way", async () => {
  const session = new FcpSession(listDriver());
  const none = await session.batch(["add a"]);
  assert.equal(none.ok, false);
  assert.match(none.text, /^\? no document open; list_session\("open <path>"\)/);
  await session.session("new");
  const typo = await session.batch(["ad a"]);
  assert.match(typo.text, /^\? op 1\/1 `ad a`: unknown verb 'ad'; did you mean: add/);
  assert.match(typo.text, /\n! nothing applied\n/);
  const quote = await session.batch(["add a", `add "b`]);
  assert.match(quote.text, /^\? op 2\/2 `add "b`: unbalanced " quote opened at column 5/);
  assert.match(quote.text, /! rolled back op 1;/);
  assert.deepEqual(session.state, []);
});

Deno.test("batch: success prints one prefixed line per op and the state line", async () => {
  const session = new FcpSession(listDriver());
  await session.session("new");
  const r = await session.batch(["add a", "add b", "del a"]);
  assert.equal(r.ok, true);
  assert.deepEqual(r.text.split("\n"), [
    "+ a",
    "+ b",
    "- a",
    "state: (unnamed) · event 3/3 · unsaved · 1 words",
  ]);
  assert.equal((await session.query("all")).text, "b");
});

Deno.test("session: undo, redo, checkpoint, undo to, and a branch after undo", async () => {
  const session = new FcpSession(listDriver());
  await session.session("new");
  await session.batch(["add a"]);
  assert.match((await session.session("checkpoint one")).text, /^! checkpoint one at event 1/);
  await session.batch(["add b", "add c"]);
  const back = await session.session("undo to:one");
  assert.equal(back.ok, true);
  assert.match(back.text, /! undid `add c` \(\+ c\)\n! undid `add b` \(\+ b\)/);
  assert.deepEqual(session.state, ["a"]);
  assert.match((await session.session("redo")).text, /^! redid `add b`/);
  assert.deepEqual(session.state, ["a", "b"]);
  await session.session("undo");
  const branch = await session.batch(["add z"]);
  assert.match(branch.text, /^! dropped 2 undone event\(s\) from the redo tail\n\+ z/);
  assert.match((await session.session("redo")).text, /^! nothing to redo/);
  assert.deepEqual(session.state, ["a", "z"]);
  const bad = await session.session("undo to:nope");
  assert.equal(bad.ok, false);
  assert.match(bad.text, /^\? no checkpoint 'nope'; did you mean: one\?\n/);
});

Deno.test("session: save, save as, open, close and their refusals", async () => {
  const driver = listDriver();
  const store = driver.storage as ReturnType<typeof memoryStorage>;
  const session = new FcpSession(driver);
  await session.session("new");
  await session.batch(["add a"]);
  const noPath = await session.session("save");
  assert.equal(noPath.ok, false);
  assert.match(noPath.text, /no path yet; save as:<path>/);
  const saved = await session.session("save as:list.json");
  assert.match(
    saved.text,
    /^! saved list\.json \(5 bytes\)\nstate: list\.json · event 1\/1 · saved/,
  );
  assert.equal(store.text("list.json"), '["a"]');
  await session.batch(["add b"]);
  const closed = await session.session("close");
  assert.match(
    closed.text,
    /^! discarded unsaved changes to list\.json\n! closed list\.json\nstate: no document$/,
  );
  const reopened = await session.session("open list.json");
  assert.match(reopened.text, /^! opened list\.json \(5 bytes\)/);
  assert.deepEqual(session.state, ["a"]);
  const missing = await session.session("open nope.json");
  assert.equal(missing.ok, false);
  assert.match(missing.text, /nope\.json: no such file/);
  const typo = await session.session("sav");
  assert.match(typo.text, /unknown session action 'sav'; did you mean: save/);
  assert.match((await session.session("checkpoint bad/name")).text, /letters, digits/);
});

Deno.test("session: a branch after undo past a save is unsaved even at the same cursor", async () => {
  const session = new FcpSession(listDriver());
  await session.session("new");
  await session.batch(["add a", "add b"]);
  await session.session("save as:l.json");
  await session.session("undo");
  assert.match((await session.session("redo")).text, /event 2\/2 · saved/);
  await session.session("undo");
  const branch = await session.batch(["add c"]);
  assert.match(branch.text, /event 2\/2 · unsaved/);
  assert.deepEqual(session.state, ["a", "c"]);
});
