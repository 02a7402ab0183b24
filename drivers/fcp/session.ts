/**
 * One driver's working session, independent of MCP: the open document, its event log, batches
 * applied all or nothing, queries, lifecycle actions and the help card. The server
 * (`server.ts`) only forwards tool calls here.
 */
import { z } from "zod";
import { FcpError } from "./errors.ts";
import { EventLog } from "./event_log.ts";
import { parseOp } from "./grammar.ts";
import { defineVerb, type FcpChange, type Verb, VerbRegistry } from "./registry.ts";
import type { FcpStorage } from "./storage.ts";

/** How a domain makes, reads, writes and sums up its documents. */
export interface SessionHooks<S> {
  /** A new, empty document (`D_session("new")`). */
  create(): S;
  /** Bytes → document; throw an {@linkcode FcpError} for content the driver cannot edit. */
  decode(bytes: Uint8Array, path: string): S;
  /** Document → bytes. */
  encode(state: S): Uint8Array;
  /** A few words on the document for the state line (`12 keys, 480 bytes`). */
  summary?(state: S): string;
}

/** Everything a driver is made of. */
export interface FcpDriver<S> {
  /** The tool-name stem: `D`, `D_query`, `D_session`, `D_help`. */
  domain: string;
  /** One line on what the driver edits, for the help card and tool descriptions. */
  description?: string;
  verbs: Verb<S, FcpChange<S>>[];
  /** Read-only queries; each returns the answer text. */
  query: Verb<S, string>[];
  session: SessionHooks<S>;
  storage: FcpStorage;
  /** Extra lines for the help card (value syntax, path syntax). */
  notes?: string[];
}

/** A tool answer: the text and whether it is an error. */
export interface FcpReply {
  ok: boolean;
  text: string;
}

interface Document<S> {
  state: S;
  path?: string;
  log: EventLog<S>;
  /** Cursor at the last save or open; the document is unsaved when the cursor differs. */
  savedAt: number | undefined;
}

type Action<S> = Verb<FcpSession<S>, Promise<string[]>>;

const checkpointName = z.string().regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, _ . - only");

/** Lifecycle actions, declared like verbs so they validate and document themselves. */
function actions<S>(): Action<S>[] {
  return [
    defineVerb({
      name: "new",
      summary: "start an empty document (save it with save as:<path>)",
      run: (s: FcpSession<S>) => s.actNew(),
    }),
    defineVerb({
      name: "open",
      summary: "load a document from storage",
      positionals: { path: z.string().min(1).describe("file path") },
      run: (s: FcpSession<S>, a) => s.actOpen(a.path),
    }),
    defineVerb({
      name: "save",
      summary: "write the document to its path, or to as:<path>",
      params: { as: z.string().min(1).optional().describe("save to this path instead") },
      run: (s: FcpSession<S>, a) => s.actSave(a.as),
    }),
    defineVerb({
      name: "checkpoint",
      summary: "name the current point in the event log",
      positionals: { name: checkpointName },
      run: (s: FcpSession<S>, a) => Promise.resolve(s.actCheckpoint(a.name)),
    }),
    defineVerb({
      name: "undo",
      summary: "revert the last mutation, or every mutation after checkpoint to:<name>",
      params: { to: checkpointName.optional().describe("a checkpoint name") },
      run: (s: FcpSession<S>, a) => Promise.resolve(s.actUndo(a.to)),
    }),
    defineVerb({
      name: "redo",
      summary: "re-apply the next undone mutation",
      run: (s: FcpSession<S>) => Promise.resolve(s.actRedo()),
    }),
    defineVerb({
      name: "close",
      summary: "drop the document (unsaved mutations are discarded and reported)",
      run: (s: FcpSession<S>) => Promise.resolve(s.actClose()),
    }),
  ];
}

function errorLine(err: unknown): string {
  if (err instanceof FcpError) return err.toLine();
  // A driver bug is still an answer, not a crash: name it as one.
  return `internal error: ${err instanceof Error ? err.message : String(err)}`;
}

/**
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FcpSession } from "./session.ts";
 * import { memoryStorage } from "./storage.ts";
 * const session = new FcpSession({
 *   domain: "demo", verbs: [], query: [], storage: memoryStorage({ "a.txt": "x" }),
 *   session: {
 *     create: () => "",
 *     decode: (bytes) => new TextDecoder().decode(bytes),
 *     encode: (text) => new TextEncoder().encode(text),
 *   },
 * });
 * const opened = await session.session("open a.txt");
 * assert.ok(opened.ok);
 * assert.match(opened.text, /^! opened a\.txt \(1 bytes\)/);
 * // A refusal is an answer on a `?` line, never a throw.
 * const missing = await session.session("open nosuch.txt");
 * assert.equal(missing.ok, false);
 * assert.match(missing.text, /^\? nosuch\.txt: no such file/);
 * ```
 */
export class FcpSession<S> {
  readonly driver: FcpDriver<S>;
  readonly verbs: VerbRegistry<S, FcpChange<S>>;
  readonly queries: VerbRegistry<S, string>;
  readonly actions: VerbRegistry<FcpSession<S>, Promise<string[]>>;
  #doc: Document<S> | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(driver: FcpDriver<S>) {
    this.driver = driver;
    this.verbs = new VerbRegistry("verb", driver.verbs);
    this.queries = new VerbRegistry("query", driver.query);
    this.actions = new VerbRegistry("session action", actions<S>());
  }

  /** The open document's state, if any (for tests and embedding). */
  get state(): S | undefined {
    return this.#doc?.state;
  }

  /** Calls run one at a time: a save must not interleave with a batch. */
  #serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #need(): Document<S> {
    if (!this.#doc) {
      throw new FcpError("no_document", "no document open", {
        hint: `${this.driver.domain}_session("open <path>") or ("new")`,
      });
    }
    return this.#doc;
  }

  /** The one-line state summary closing every response. */
  stateLine(): string {
    const doc = this.#doc;
    if (!doc) return `state: no document`;
    const unsaved = doc.savedAt !== doc.log.cursor;
    const parts = [
      doc.path ?? "(unnamed)",
      `event ${doc.log.cursor}/${doc.log.length}`,
      unsaved ? "unsaved" : "saved",
    ];
    const summary = this.driver.session.summary?.(doc.state);
    if (summary) parts.push(summary);
    return `state: ${parts.join(" · ")}`;
  }

  /** Apply ops all or nothing: an error in op k leaves the document as it was before op 1. */
  batch(ops: string[]): Promise<FcpReply> {
    return this.#serial(() => {
      let doc: Document<S>;
      try {
        doc = this.#need();
      } catch (err) {
        return { ok: false, text: `? ${errorLine(err)}\n${this.stateLine()}` };
      }
      const done: { op: string; change: FcpChange<S> }[] = [];
      let state = doc.state;
      for (const [k, op] of ops.entries()) {
        try {
          const parsed = parseOp(op);
          const { verb, args } = this.verbs.resolve(parsed);
          const change = verb.run(state, args, parsed);
          state = change.apply(state);
          done.push({ op, change });
        } catch (err) {
          // Rollback is keeping the old value: apply() never changed it (states are values).
          const rolled = k === 0
            ? "! nothing applied"
            : `! rolled back op${k > 1 ? `s 1-${k}` : " 1"}; nothing applied`;
          const line = `? op ${k + 1}/${ops.length} \`${op}\`: ${errorLine(err)}`;
          return { ok: false, text: [line, rolled, this.stateLine()].join("\n") };
        }
      }
      const lines: string[] = [];
      for (const event of done) {
        const dropped = doc.log.append(event);
        // A save point in the dropped tail can never be reached again; without this, a new
        // branch that reaches the same cursor would claim to be saved.
        if (
          dropped.droppedEvents > 0 && doc.savedAt !== undefined && doc.savedAt >= doc.log.cursor
        ) {
          doc.savedAt = undefined;
        }
        if (dropped.droppedEvents > 0) {
          const names = dropped.droppedCheckpoints;
          lines.push(
            `! dropped ${dropped.droppedEvents} undone event(s) from the redo tail${
              names.length ? ` and checkpoint(s) ${names.join(", ")}` : ""
            }`,
          );
        }
        lines.push(`${event.change.prefix} ${event.change.message}`);
      }
      doc.state = state;
      if (ops.length === 0) lines.push("! empty batch");
      return { ok: true, text: [...lines, this.stateLine()].join("\n") };
    });
  }

  /** Answer a read-only query on the open document. */
  query(q: string): Promise<FcpReply> {
    return this.#serial(() => {
      try {
        const doc = this.#need();
        const op = parseOp(q);
        const { verb, args } = this.queries.resolve(op);
        return { ok: true, text: verb.run(doc.state, args, op) };
      } catch (err) {
        return { ok: false, text: `? ${errorLine(err)}` };
      }
    });
  }

  /** Run one lifecycle action (`new`, `open <path>`, `save [as:<path>]`, …). */
  session(action: string): Promise<FcpReply> {
    return this.#serial(async () => {
      try {
        const op = parseOp(action);
        const { verb, args } = this.actions.resolve(op);
        const lines = await verb.run(this, args, op);
        return { ok: true, text: [...lines, this.stateLine()].join("\n") };
      } catch (err) {
        return { ok: false, text: `? ${errorLine(err)}\n${this.stateLine()}` };
      }
    });
  }

  #discarding(): string[] {
    const doc = this.#doc;
    if (!doc || doc.savedAt === doc.log.cursor) return [];
    return [`! discarded unsaved changes to ${doc.path ?? "the unnamed document"}`];
  }

  /** @internal the `new` action. */
  actNew(): Promise<string[]> {
    const lines = this.#discarding();
    this.#doc = { state: this.driver.session.create(), log: new EventLog(), savedAt: undefined };
    return Promise.resolve([...lines, `! new ${this.driver.domain} document`]);
  }

  /** @internal the `open` action. */
  async actOpen(path: string): Promise<string[]> {
    const bytes = await this.driver.storage.load(path);
    const state = this.driver.session.decode(bytes, path);
    const lines = this.#discarding();
    this.#doc = { state, path, log: new EventLog(), savedAt: 0 };
    return [...lines, `! opened ${path} (${bytes.length} bytes)`];
  }

  /** @internal the `save` action. */
  async actSave(as?: string): Promise<string[]> {
    const doc = this.#need();
    const path = as ?? doc.path;
    if (!path) {
      throw new FcpError("invalid_args", "save: the document has no path yet", {
        hint: "save as:<path>",
      });
    }
    const bytes = this.driver.session.encode(doc.state);
    const note = await this.driver.storage.save(path, bytes);
    doc.path = path;
    doc.savedAt = doc.log.cursor;
    return [`! saved ${path} (${bytes.length} bytes${note ? `, ${note}` : ""})`];
  }

  /** @internal the `checkpoint` action. */
  actCheckpoint(name: string): string[] {
    const doc = this.#need();
    const moved = doc.log.checkpoints().has(name) ? " (moved)" : "";
    return [`! checkpoint ${name} at event ${doc.log.checkpoint(name)}${moved}`];
  }

  /** @internal the `undo` action. */
  actUndo(to?: string): string[] {
    const doc = this.#need();
    const moved = to === undefined ? doc.log.undo(doc.state) : doc.log.undoTo(to, doc.state);
    if (!moved || moved.events.length === 0) return ["! nothing to undo"];
    doc.state = moved.state;
    return moved.events.map((e) => `! undid \`${e.op}\` (${e.change.prefix} ${e.change.message})`);
  }

  /** @internal the `redo` action. */
  actRedo(): string[] {
    const doc = this.#need();
    const moved = doc.log.redo(doc.state);
    if (!moved) return ["! nothing to redo"];
    doc.state = moved.state;
    return moved.events.map((e) => `! redid \`${e.op}\` (${e.change.prefix} ${e.change.message})`);
  }

  /** @internal the `close` action. */
  actClose(): string[] {
    const doc = this.#need();
    const lines = this.#discarding();
    this.#doc = undefined;
    return [...lines, `! closed ${doc.path ?? "the unnamed document"}`];
  }

  /** The reference card, generated from the three registries. */
  help(): string {
    const d = this.driver.domain;
    return [
      `${d}: FCP driver${this.driver.description ? ` for ${this.driver.description}` : ""}`,
      "",
      `${d}(ops: string[]): mutations, applied all or nothing`,
      ...this.verbs.help(),
      "",
      `${d}_query(q: string): read-only`,
      ...this.queries.help(),
      "",
      `${d}_session(action: string): lifecycle`,
      ...this.actions.help(),
      "",
      "op grammar: VERB positional… key:value… @type:value @not:type:value @all, arrows -> <-> --",
      '  quote to keep spaces or literal text: key:"two words", "a:b"; escapes \\" \\\\ \\n',
      "  A1:F1, 1:5, A:C and Sheet!A1:B2 are ranges (positionals), not key:values",
      "responses: + created, ~ changed, - removed, ! lifecycle/meta, ? error; then a state line",
      ...(this.driver.notes ?? []),
    ].join("\n");
  }
}
