/**
 * Machines are data: this walks a machine's state nodes (`machine.root`) and exports what it
 * finds — nested states, transitions with their events, guards and actions, invoked and spawned
 * actors — as a plain graph, then renders that graph as Mermaid `stateDiagram-v2` or Graphviz DOT.
 * Nothing here is hand-written per machine, so a changed machine is a changed diagram.
 */
import type { AnyStateMachine } from "xstate";

/** An actor a state invokes while it is active. */
export interface InvokeInfo {
  id: string;
  src: string;
  systemId?: string;
}

/** One state node. `id` is XState's (`session.live.spawning`); the machine root is included. */
export interface StateInfo {
  id: string;
  key: string;
  parent: string | null;
  type: "atomic" | "compound" | "parallel" | "final" | "history";
  initial?: string;
  tags: string[];
  entry: string[];
  exit: string[];
  invoke: InvokeInfo[];
}

/** One transition; `targets` is empty for a targetless one (actions only). */
export interface TransitionInfo {
  source: string;
  targets: string[];
  event: string;
  /** The event as diagrams show it: `done(drain)` for `xstate.done.actor.drain`. */
  label: string;
  guard?: string;
  actions: string[];
  /** Sources of the actors this transition spawns (`spawnChild`). */
  spawns: string[];
  reenter: boolean;
}

/** A machine as data. */
export interface MachineGraph {
  id: string;
  states: StateInfo[];
  transitions: TransitionInfo[];
}

export type ExportFormat = "mermaid" | "dot" | "json";

// The state node surface we read. XState's StateNode type carries the whole machine's generics;
// this is the part the walk needs, and the part a test can build its expectations from.
interface NodeLike {
  id: string;
  key: string;
  type: StateInfo["type"];
  parent?: NodeLike;
  states: Record<string, NodeLike>;
  initial?: { target: NodeLike[] };
  tags: string[];
  entry: unknown[];
  exit: unknown[];
  invoke: { id: string; src: unknown; systemId?: string }[];
  transitions: Map<string, TransitionLike[]>;
}

interface TransitionLike {
  eventType: string;
  target?: NodeLike[];
  guard?: unknown;
  actions: unknown[];
  reenter?: boolean;
}

/**
 * Walk `machine.root` depth-first, in declaration order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createMachine } from "xstate";
 * import { machineGraph } from "./inspect_export.ts";
 * const m = createMachine({ id: "m", initial: "a", states: { a: { on: { go: "b" } }, b: {} } });
 * const g = machineGraph(m);
 * assert.equal(g.states.length, 3);
 * assert.equal(g.transitions[0].targets[0], "m.b");
 * ```
 */
export function machineGraph(machine: AnyStateMachine): MachineGraph {
  const states: StateInfo[] = [];
  const transitions: TransitionInfo[] = [];
  const visit = (node: NodeLike) => {
    states.push({
      id: node.id,
      key: node.key,
      parent: node.parent?.id ?? null,
      type: node.type,
      ...(node.initial?.target?.length ? { initial: node.initial.target[0].id } : {}),
      tags: [...node.tags],
      entry: node.entry.map(actionName),
      exit: node.exit.map(actionName),
      invoke: node.invoke.map((inv) => ({
        id: inv.id,
        src: typeof inv.src === "string" ? inv.src : "(inline)",
        ...(inv.systemId ? { systemId: inv.systemId } : {}),
      })),
    });
    for (const list of node.transitions.values()) {
      for (const t of list) {
        const guard = guardName(t.guard);
        transitions.push({
          source: node.id,
          targets: (t.target ?? []).map((n) => n.id),
          event: t.eventType,
          label: eventLabel(t.eventType, node),
          ...(guard ? { guard } : {}),
          actions: t.actions.map(actionName),
          spawns: t.actions.flatMap((a) => spawnSource(a)),
          reenter: t.reenter === true,
        });
      }
    }
    for (const child of Object.values(node.states)) visit(child);
  };
  visit(machine.root as unknown as NodeLike);
  return { id: machine.id, states, transitions };
}

function actionName(action: unknown): string {
  if (typeof action === "string") return action;
  if (action && (typeof action === "object" || typeof action === "function")) {
    const type = (action as { type?: unknown }).type;
    if (typeof type === "string") return type.replace(/^xstate\./, "");
  }
  return "(inline)";
}

function guardName(guard: unknown): string | undefined {
  if (guard === undefined) return undefined;
  if (typeof guard === "string") return guard;
  const type = (guard as { type?: unknown }).type;
  return typeof type === "string" ? type : "(inline)";
}

function spawnSource(action: unknown): string[] {
  if (!action || (typeof action !== "object" && typeof action !== "function")) return [];
  const a = action as { type?: unknown; src?: unknown };
  if (a.type !== "xstate.spawnChild") return [];
  return [typeof a.src === "string" ? a.src : "(inline)"];
}

/** `xstate.done.actor.<id>` → `done(<id>)`, naming the invoked src when the id was generated. */
function eventLabel(event: string, node: NodeLike): string {
  const m = /^xstate\.(done|error)\.actor\.(.+)$/.exec(event);
  if (!m) return event;
  let src: string | undefined;
  for (let n: NodeLike | undefined = node; n && !src; n = n.parent) {
    const inv = n.invoke.find((i) => i.id === m[2]);
    if (inv && typeof inv.src === "string") src = inv.src;
  }
  // Generated invoke ids look like `0.root.draining`; the src says more.
  const name = /^\d+\./.test(m[2]) && src ? src : m[2];
  return `${m[1]}(${name})`;
}

/** The text a diagram shows for a transition: `event [guard] / action, action`. */
export function transitionText(t: TransitionInfo): string {
  const actions = t.actions.map((a) =>
    a === "spawnChild" && t.spawns.length ? `spawn ${t.spawns.join(", ")}` : a
  );
  return `${t.label}${t.guard ? ` [${t.guard}]` : ""}${
    actions.length ? ` / ${actions.join(", ")}` : ""
  }`;
}

/** Lines under a state's name: what it runs, its entry/exit actions and tags. */
function stateNotes(s: StateInfo): string[] {
  return [
    ...s.invoke.map((i) =>
      `invoke ${i.id === i.src || /^\d+\./.test(i.id) ? i.src : `${i.id} (${i.src})`}${
        i.systemId ? ` #${i.systemId}` : ""
      }`
    ),
    ...(s.entry.length ? [`entry / ${s.entry.join(", ")}`] : []),
    ...(s.exit.length ? [`exit / ${s.exit.join(", ")}`] : []),
    ...(s.tags.length ? [`tags: ${s.tags.join(", ")}`] : []),
  ];
}

/** Where a targetless transition of a compound state is drawn (a pseudo-state inside it). */
export function anyStateId(stateId: string): string {
  return `${stateId}.__any`;
}

/** The Mermaid identifier for a state id (`session.live` → `session_live`). */
export function mermaidId(stateId: string): string {
  return stateId.replace(/[^A-Za-z0-9_]/g, "_");
}

// Mermaid reads `;` as a statement end, `#` as an entity and `:` as a description separator.
function mermaidText(text: string): string {
  return text.replace(/[;#:"{}]/g, (c) => `#${c.charCodeAt(0)};`);
}

/**
 * Render as a Mermaid `stateDiagram-v2`. The machine root is the diagram itself; transitions of
 * the root, and targetless ones of a compound state, start at an "(any)" pseudo-state inside it,
 * because Mermaid cannot draw a self-loop on a composite state.
 */
export function toMermaid(graph: MachineGraph): string {
  const { byParent, byId, root, anyUsers } = layout(graph);
  const block = (s: StateInfo, depth: number): string[] => {
    const pad = "  ".repeat(depth);
    const inner = s === root ? pad : pad + "  ";
    const kids = byParent.get(s.id) ?? [];
    const body: string[] = [];
    if (s.initial) body.push(`${inner}[*] --> ${mermaidId(s.initial)}`);
    if (anyUsers.has(s.id)) body.push(`${inner}state "(any)" as ${mermaidId(anyStateId(s.id))}`);
    kids.forEach((k, i) => {
      // Regions of a parallel state are separated by `--`.
      if (s.type === "parallel" && i > 0) body.push(`${inner}--`);
      body.push(...block(k, s === root ? depth : depth + 1));
    });
    if (s === root) return body;
    const id = mermaidId(s.id);
    const notes = stateNotes(s);
    if (kids.length) {
      const kind = s.type === "parallel" ? " (parallel)" : "";
      const title = [s.key + kind, ...notes].map(mermaidText).join(" · ");
      return [`${pad}state "${title}" as ${id} {`, ...body, `${pad}}`];
    }
    return [
      `${pad}state "${mermaidText(s.key)}" as ${id}`,
      ...notes.map((note) => `${pad}${id} : ${mermaidText(note)}`),
      ...(s.type === "final" ? [`${pad}${id} --> [*]`] : []),
    ];
  };
  const lines = ["stateDiagram-v2", `  %% machine ${graph.id}`, ...block(root, 1)];
  for (const t of graph.transitions) {
    const from = byId.get(t.source)!;
    const src = anyUsers.has(t.source) && (from === root || isLoop(t))
      ? mermaidId(anyStateId(t.source))
      : mermaidId(t.source);
    const text = mermaidText(transitionText(t));
    for (const target of t.targets.length ? t.targets : [t.source]) {
      const to = byId.get(target)!;
      // A compound target that is the source itself (or the root) loops on "(any)".
      const dst = to.type !== "atomic" && (target === t.source || to === root)
        ? mermaidId(anyStateId(target))
        : mermaidId(target);
      lines.push(`  ${src} --> ${dst} : ${text}`);
    }
  }
  return lines.join("\n") + "\n";
}

function isLoop(t: TransitionInfo): boolean {
  return t.targets.length === 0 || t.targets.includes(t.source);
}

/** Shared by both renderers: parent → children, id → state, and who needs an "(any)" node. */
function layout(graph: MachineGraph) {
  const byParent = new Map<string, StateInfo[]>();
  for (const s of graph.states) {
    if (s.parent !== null) byParent.set(s.parent, [...(byParent.get(s.parent) ?? []), s]);
  }
  const byId = new Map(graph.states.map((s) => [s.id, s]));
  const root = graph.states.find((s) => s.parent === null)!;
  const anyUsers = new Set<string>();
  for (const t of graph.transitions) {
    const from = byId.get(t.source)!;
    if (from.type !== "atomic" && from.type !== "final" && (from === root || isLoop(t))) {
      anyUsers.add(t.source);
    }
    for (const target of t.targets) {
      const to = byId.get(target)!;
      if (to === root || (target === t.source && to.type !== "atomic")) anyUsers.add(target);
    }
  }
  return { byParent, byId, root, anyUsers };
}

function dotString(text: string): string {
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

/**
 * Render as a Graphviz digraph: compound states are clusters (dashed when parallel), each with
 * an anchor point that edges to and from the compound state attach to (clipped at the cluster's
 * border); the root's transitions and targetless ones of a compound state loop on "(any)".
 */
export function toDot(graph: MachineGraph): string {
  const { byParent, byId, root, anyUsers } = layout(graph);
  const compound = (s: StateInfo) => (byParent.get(s.id) ?? []).length > 0;
  const cluster = (id: string) => dotString(`cluster_${id}`);
  const inside = (a: string, b: string) => a === b || a.startsWith(b + ".");
  const lines = [
    `digraph ${dotString(graph.id)} {`,
    "  compound=true;",
    '  graph [fontname="Helvetica", fontsize=10];',
    "  rankdir=LR;",
    '  node [shape=box, style=rounded, fontname="Helvetica", fontsize=10];',
    '  edge [fontname="Helvetica", fontsize=9];',
  ];
  const emit = (s: StateInfo, pad: string) => {
    const label = (title: string) => dotString([title, ...stateNotes(s)].join("\n"));
    if (!compound(s)) {
      const final = s.type === "final" ? ", peripheries=2" : "";
      lines.push(`${pad}${dotString(s.id)} [label=${label(s.key)}${final}];`);
      return;
    }
    const inner = s === root ? pad : pad + "  ";
    if (s !== root) {
      lines.push(`${pad}subgraph ${cluster(s.id)} {`);
      lines.push(`${inner}label=${label(s.key + (s.type === "parallel" ? " (parallel)" : ""))};`);
      lines.push(`${inner}style=${s.type === "parallel" ? '"rounded,dashed"' : "rounded"};`);
      lines.push(`${inner}${dotString(s.id)} [shape=point, width=0.08, label=""];`);
    }
    if (anyUsers.has(s.id)) {
      lines.push(`${inner}${dotString(anyStateId(s.id))} [label="(any)", shape=plaintext];`);
    }
    if (s.initial) {
      const init = dotString(`${s.id}.__initial`);
      lines.push(
        `${inner}${init} [shape=circle, style=filled, fillcolor=black, width=0.12, label=""];`,
      );
      const first = byId.get(s.initial)!;
      const head = compound(first) ? ` [lhead=${cluster(first.id)}]` : "";
      lines.push(`${inner}${init} -> ${dotString(s.initial)}${head};`);
    }
    for (const k of byParent.get(s.id) ?? []) emit(k, inner);
    if (s !== root) lines.push(`${pad}}`);
  };
  emit(root, "  ");
  for (const t of graph.transitions) {
    const from = byId.get(t.source)!;
    const label = dotString(transitionText(t));
    const viaAny = anyUsers.has(t.source) && (from === root || isLoop(t));
    const src = viaAny ? anyStateId(t.source) : t.source;
    for (const target of t.targets.length ? t.targets : [t.source]) {
      const to = byId.get(target)!;
      const loopsOnAny = to === root || (target === t.source && compound(to));
      const dst = loopsOnAny ? anyStateId(target) : target;
      const attrs = [`label=${label}`];
      // Clip at a cluster's border only when neither end lies inside the other's cluster.
      if (compound(from) && !viaAny && !inside(dst, t.source)) {
        attrs.push(`ltail=${cluster(t.source)}`);
      }
      if (compound(to) && !loopsOnAny && !inside(src, target)) {
        attrs.push(`lhead=${cluster(target)}`);
      }
      lines.push(`  ${dotString(src)} -> ${dotString(dst)} [${attrs.join(", ")}];`);
    }
  }
  lines.push("}");
  return lines.join("\n") + "\n";
}

/**
 * Export `machine` in `format`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createMachine } from "xstate";
 * import { exportMachine } from "./inspect_export.ts";
 * const m = createMachine({ id: "m", initial: "a", states: { a: { on: { go: "b" } }, b: {} } });
 * assert.ok(exportMachine(m, "mermaid").includes("m_a --> m_b : go"));
 * ```
 */
export function exportMachine(machine: AnyStateMachine, format: ExportFormat): string {
  const graph = machineGraph(machine);
  if (format === "mermaid") return toMermaid(graph);
  if (format === "dot") return toDot(graph);
  return JSON.stringify(graph, null, 2) + "\n";
}
