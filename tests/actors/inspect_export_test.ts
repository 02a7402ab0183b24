/**
 * `ostk inspect machines`: the exports are checked against each machine's own `.config` (walked
 * here independently of the exporter, which walks `machine.root`), rendered by the real `dot`
 * and Mermaid CLI when they are installed, and shown to follow a machine when it changes.
 */
import assert from "node:assert/strict";
import { type AnyStateMachine, createMachine } from "xstate";
import {
  anyStateId,
  exportMachine,
  type MachineGraph,
  mermaidId,
  transitionText,
} from "../../actors/inspect_export.ts";
import { rootMachine } from "../../actors/root_machine.ts";
import { sessionMachine } from "../../actors/session_machine.ts";
import { runOstk, withScratch } from "../helpers/run_ostk.ts";

const MACHINES: [string, AnyStateMachine][] = [["root", rootMachine], ["session", sessionMachine]];

interface Expected {
  states: Set<string>;
  /** `source|event|target` ('' for a targetless transition); `event` ends in `*` when generated. */
  transitions: string[];
}

type Json = Record<string, unknown>;

/** Walk a machine's config as written: states, `on`, and `invoke` onDone/onError. */
function fromConfig(machine: AnyStateMachine): Expected {
  const states = new Set<string>();
  const transitions: string[] = [];
  const resolve = (source: string, target: string): string => {
    if (target.startsWith("#")) return target.slice(1);
    if (target.startsWith(".")) return source + target;
    return source.split(".").slice(0, -1).concat(target).join(".");
  };
  const add = (source: string, event: string, spec: unknown) => {
    const list = Array.isArray(spec) ? spec : [spec];
    for (const one of list) {
      const target = typeof one === "string" ? one : (one as Json | undefined)?.target;
      const targets = target === undefined ? [] : Array.isArray(target) ? target : [target];
      if (targets.length === 0) transitions.push(`${source}|${event}|`);
      for (const t of targets) {
        transitions.push(`${source}|${event}|${resolve(source, t as string)}`);
      }
    }
  };
  const visit = (id: string, node: Json) => {
    states.add(id);
    for (const [event, spec] of Object.entries((node.on ?? {}) as Json)) add(id, event, spec);
    const invokes = node.invoke === undefined ? [] : [node.invoke].flat() as Json[];
    for (const inv of invokes) {
      const name = typeof inv.id === "string" ? inv.id : "*";
      if (inv.onDone) add(id, `xstate.done.actor.${name}`, inv.onDone);
      if (inv.onError) add(id, `xstate.error.actor.${name}`, inv.onError);
    }
    for (const [key, child] of Object.entries((node.states ?? {}) as Json)) {
      visit(`${id}.${key}`, child as Json);
    }
  };
  visit(machine.id, machine.config as unknown as Json);
  return { states, transitions };
}

function graphOf(machine: AnyStateMachine): MachineGraph {
  return JSON.parse(exportMachine(machine, "json"));
}

function keyOf(source: string, event: string, target: string): string {
  return `${source}|${event}|${target}`;
}

/** The JSON export's transitions as keys, generated invoke ids written as `*`. */
function exportedKeys(graph: MachineGraph): string[] {
  return graph.transitions.flatMap((t) => {
    const event = t.event.replace(/^(xstate\.(?:done|error)\.actor\.)\d+\..*$/, "$1*");
    return t.targets.length ? t.targets.map((x) => keyOf(t.source, event, x)) : [
      keyOf(t.source, event, ""),
    ];
  });
}

for (const [name, machine] of MACHINES) {
  Deno.test(`inspect export: the JSON of the ${name} machine holds every state and transition of its config`, () => {
    const expected = fromConfig(machine);
    const graph = graphOf(machine);
    assert.deepEqual(new Set(graph.states.map((s) => s.id)), expected.states);
    assert.deepEqual(exportedKeys(graph).sort(), [...expected.transitions].sort());
    // Guards and invoked actors come through by name.
    assert.ok(graph.transitions.some((t) => t.guard), "no guard exported");
    assert.ok(graph.states.some((s) => s.invoke.length > 0), "no invoked actor exported");
  });

  Deno.test(`inspect export: Mermaid and DOT of the ${name} machine draw every state and transition`, () => {
    const graph = graphOf(machine);
    const mermaid = exportMachine(machine, "mermaid");
    const dot = exportMachine(machine, "dot");
    assert.ok(mermaid.startsWith("stateDiagram-v2\n"));
    assert.ok(dot.startsWith(`digraph "${machine.id}" {`));
    const root = graph.states.find((s) => s.parent === null)!;
    for (const s of graph.states) {
      if (s.initial) {
        const init = `[*] --> ${mermaidId(s.initial)}`;
        assert.ok(mermaid.includes(init), `mermaid lacks the initial arrow of ${s.id}`);
        assert.ok(dot.includes(`"${s.id}.__initial" -> "${s.initial}"`), `dot: initial of ${s.id}`);
      }
      if (s.type === "final") assert.ok(mermaid.includes(`${mermaidId(s.id)} --> [*]`));
      if (s === root) continue;
      assert.match(mermaid, new RegExp(`as ${mermaidId(s.id)}( \\{)?\\n`), `mermaid lacks ${s.id}`);
      const kids = graph.states.some((c) => c.parent === s.id);
      const dotNode = kids ? `subgraph "cluster_${s.id}" {` : `"${s.id}" [label="${s.key}`;
      assert.ok(dot.includes(dotNode), `dot lacks ${s.id}`);
    }
    const mermaidEdges = mermaid.split("\n").filter((l) => / --> .* : /.test(l));
    const dotEdges = dot.split("\n").filter((l) =>
      / -> .*\[label=/.test(l) && !l.includes("__initial")
    );
    let expectedEdges = 0;
    for (const t of graph.transitions) {
      const text = transitionText(t);
      for (const target of t.targets.length ? t.targets : [t.source]) {
        expectedEdges++;
        const ends = [t.source, target];
        const mm = mermaidEdges.filter((l) =>
          l.endsWith(` : ${text}`) &&
          ends.every((e, i) =>
            l.trim().split(" ")[i * 2] === mermaidId(e) ||
            l.trim().split(" ")[i * 2] === mermaidId(anyStateId(e))
          )
        );
        assert.ok(mm.length > 0, `mermaid lacks ${t.source} → ${target} : ${text}`);
        const dd = dotEdges.filter((l) =>
          l.includes(`[label="${text}"`) &&
          ends.every((e, i) => {
            const end = l.trim().split(" -> ")[i].split(" [")[0];
            return end === `"${e}"` || end === `"${anyStateId(e)}"`;
          })
        );
        assert.ok(dd.length > 0, `dot lacks ${t.source} → ${target} : ${text}`);
      }
    }
    assert.equal(mermaidEdges.length, expectedEdges);
    assert.equal(dotEdges.length, expectedEdges);
  });
}

Deno.test("inspect export: the root renders its listener and scheduler as invoked actors and spawns sessions", () => {
  const mermaid = exportMachine(rootMachine, "mermaid");
  const dot = exportMachine(rootMachine, "dot");
  for (const text of ["invoke listener #35;listener", "invoke scheduler #35;scheduler"]) {
    assert.ok(mermaid.includes(text), text);
  }
  assert.ok(dot.includes("invoke listener #listener"));
  assert.ok(mermaid.includes("session.spawn_child / spawn session"));
  assert.ok(dot.includes("session.spawn_child / spawn session"));
  // The running state is parallel: its regions are separated in Mermaid, dashed in DOT.
  assert.match(mermaid, /\n\s+--\n/);
  assert.ok(dot.includes('style="rounded,dashed"'));
});

Deno.test("inspect export: a machine that changes exports the change", () => {
  const before = createMachine({
    id: "door",
    initial: "closed",
    states: { closed: { on: { open: "opened" } }, opened: { on: { close: "closed" } } },
  });
  const after = createMachine({
    id: "door",
    initial: "closed",
    states: {
      closed: { on: { open: "opened", lock: "locked" } },
      opened: { on: { close: "closed" } },
      locked: { on: { unlock: { target: "closed", guard: "hasKey" } } },
    },
  });
  for (const format of ["mermaid", "dot", "json"] as const) {
    const a = exportMachine(before, format);
    const b = exportMachine(after, format);
    assert.notEqual(a, b);
    assert.ok(!a.includes("locked"), `${format} of the old machine mentions 'locked'`);
    assert.ok(b.includes("locked") && b.includes("unlock"), `${format} lacks the new state`);
    if (format !== "json") assert.ok(b.includes("unlock [hasKey]"), `${format} lacks the guard`);
  }
});

async function runs(cmd: string, args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output())
      .success;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

const hasDot = await runs("dot", ["-V"]);
Deno.test({
  name: "inspect export: Graphviz dot renders both machines without a warning",
  ignore: !hasDot,
  async fn() {
    for (const [, machine] of MACHINES) {
      const child = new Deno.Command("dot", {
        args: ["-Tsvg"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(exportMachine(machine, "dot")));
      await writer.close();
      const { code, stdout, stderr } = await child.output();
      const errors = new TextDecoder().decode(stderr);
      assert.equal(code, 0, errors);
      assert.equal(errors, "");
      const svg = new TextDecoder().decode(stdout);
      assert.ok(svg.includes("<svg") && svg.includes(machine.id));
    }
  },
});

/** Mermaid CLI needs a browser; it runs offline against a system Chromium (apt: chromium). */
const CHROMIUM = Deno.env.get("OSTK_CHROMIUM") ?? "/usr/bin/chromium";
const hasMermaidCli = (await runs(CHROMIUM, ["--version"])) && (await runs("npx", ["--version"]));
Deno.test({
  name: "inspect export: the Mermaid CLI renders both machines",
  ignore: !hasMermaidCli,
  async fn() {
    await withScratch(async (scratch) => {
      const config = `${scratch.dir}/puppeteer.json`;
      await Deno.writeTextFile(
        config,
        JSON.stringify({ executablePath: CHROMIUM, args: ["--no-sandbox"] }),
      );
      for (const [name, machine] of MACHINES) {
        const input = `${scratch.dir}/${name}.mmd`;
        const output = `${scratch.dir}/${name}.svg`;
        await Deno.writeTextFile(input, exportMachine(machine, "mermaid"));
        const { code, stderr } = await new Deno.Command("npx", {
          args: [
            "-y",
            "-p",
            "@mermaid-js/mermaid-cli@11",
            "mmdc",
            "-p",
            config,
            "-i",
            input,
            "-o",
            output,
          ],
          env: { PUPPETEER_SKIP_DOWNLOAD: "1" },
          stdout: "null",
          stderr: "piped",
        }).output();
        assert.equal(code, 0, new TextDecoder().decode(stderr));
        const svg = await Deno.readTextFile(output);
        assert.ok(svg.includes("<svg") && svg.includes("rehydrating") === (name === "session"));
      }
    });
  },
});

Deno.test("inspect export: 'ostk inspect machines' prints the exports", async () => {
  await withScratch(async (scratch) => {
    const json = await runOstk(scratch, ["inspect", "machines", "--format", "json"]);
    assert.equal(json.code, 0, json.stderr);
    const both = JSON.parse(json.stdout);
    assert.deepEqual(both.session, graphOf(sessionMachine));
    assert.deepEqual(both.root, graphOf(rootMachine));
    const dot = await runOstk(scratch, [
      "inspect",
      "machines",
      "--machine",
      "root",
      "--format",
      "dot",
    ]);
    assert.equal(dot.stdout, exportMachine(rootMachine, "dot"));
    const bad = await runOstk(scratch, ["inspect", "machines", "--format", "png"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--format must be mermaid, dot or json/);
  });
});
