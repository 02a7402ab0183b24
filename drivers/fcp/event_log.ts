/**
 * The event log: every mutation with its inverse, and a cursor. Undo reverts the event before
 * the cursor, redo re-applies the one after it; a new event after an undo drops the redo tail
 * (and the checkpoints that pointed into it). Checkpoints name cursor positions.
 */
import { FcpError } from "./errors.ts";
import type { FcpChange } from "./registry.ts";
import { suggestionHint } from "./suggest.ts";

/** One logged mutation: the op text that made it and the change with its inverse. */
export interface FcpEvent<S> {
  op: string;
  change: FcpChange<S>;
}

/** What a cursor move did. */
export interface Moved<S> {
  state: S;
  /** The events reverted (undo, latest first) or re-applied (redo). */
  events: FcpEvent<S>[];
}

/**
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EventLog } from "./event_log.ts";
 * const log = new EventLog<number>();
 * const inc = { prefix: "~" as const, message: "+1", apply: (n: number) => n + 1, revert: (n: number) => n - 1 };
 * log.append({ op: "inc", change: inc });
 * assert.equal(log.undo(1)?.state, 0);
 * assert.equal(log.redo(0)?.state, 1);
 * ```
 */
export class EventLog<S> {
  #events: FcpEvent<S>[] = [];
  #cursor = 0;
  #checkpoints = new Map<string, number>();

  /** Events applied: the state is the result of events `0..cursor-1`. */
  get cursor(): number {
    return this.#cursor;
  }

  /** Events held, including the redo tail. */
  get length(): number {
    return this.#events.length;
  }

  get canUndo(): boolean {
    return this.#cursor > 0;
  }

  get canRedo(): boolean {
    return this.#cursor < this.#events.length;
  }

  /** The events applied so far, oldest first. */
  applied(): readonly FcpEvent<S>[] {
    return this.#events.slice(0, this.#cursor);
  }

  /**
   * Record an event already applied to the state. Drops the redo tail and any checkpoint past
   * the cursor; returns what was dropped so the caller can say so.
   */
  append(event: FcpEvent<S>): { droppedEvents: number; droppedCheckpoints: string[] } {
    const droppedEvents = this.#events.length - this.#cursor;
    const droppedCheckpoints: string[] = [];
    if (droppedEvents > 0) {
      this.#events.length = this.#cursor;
      for (const [name, at] of this.#checkpoints) {
        if (at > this.#cursor) {
          this.#checkpoints.delete(name);
          droppedCheckpoints.push(name);
        }
      }
    }
    this.#events.push(event);
    this.#cursor++;
    return { droppedEvents, droppedCheckpoints };
  }

  /** Revert the last applied event; `undefined` when there is none. */
  undo(state: S): Moved<S> | undefined {
    if (!this.canUndo) return undefined;
    const event = this.#events[this.#cursor - 1];
    const next = event.change.revert(state);
    this.#cursor--;
    return { state: next, events: [event] };
  }

  /** Re-apply the next event of the redo tail; `undefined` when there is none. */
  redo(state: S): Moved<S> | undefined {
    if (!this.canRedo) return undefined;
    const event = this.#events[this.#cursor];
    const next = event.change.apply(state);
    this.#cursor++;
    return { state: next, events: [event] };
  }

  /** Name the current cursor position; a name used before moves to here. */
  checkpoint(name: string): number {
    this.#checkpoints.set(name, this.#cursor);
    return this.#cursor;
  }

  /** Checkpoints by name → cursor position. */
  checkpoints(): ReadonlyMap<string, number> {
    return this.#checkpoints;
  }

  /**
   * Undo back to a checkpoint. Throws `not_found` (with the closest names) for an unknown one
   * and `conflict` for one ahead of the cursor, which only redo can reach.
   */
  undoTo(name: string, state: S): Moved<S> {
    const at = this.#checkpoints.get(name);
    if (at === undefined) {
      throw new FcpError("not_found", `no checkpoint '${name}'`, {
        hint: this.#checkpoints.size
          ? suggestionHint(name, [...this.#checkpoints.keys()], "checkpoints")
          : "make one with checkpoint <name>",
      });
    }
    if (at > this.#cursor) {
      throw new FcpError(
        "conflict",
        `checkpoint '${name}' is ${at - this.#cursor} event(s) ahead of the cursor`,
        { hint: "use redo to move forward" },
      );
    }
    // Revert everything first and move the cursor last: a revert that throws leaves the log
    // where it was, matching the state the caller still holds.
    const events = this.#events.slice(at, this.#cursor).reverse();
    const current = events.reduce((s, event) => event.change.revert(s), state);
    this.#cursor = at;
    return { state: current, events };
  }
}
