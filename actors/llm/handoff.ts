/**
 * The handoff note a model session leaves when it ends short of its task (context full or a
 * budget spent): `.ostk/handoff/<alias>.md`, for the agent or person who continues. Task,
 * progress and open questions (in the agent's words when it could write them), files touched
 * with the gen last seen, and why the session stopped.
 */
import { atomicWrite } from "../../kernel/atomic_write.ts";
import type { FileTouch } from "./sidecar.ts";

/** The user message of the draining turn. */
export const HANDOFF_PROMPT = [
  "Your context window is nearly full; this is your last turn and no tools are available.",
  "Write a handoff for whoever continues this task, in two sections:",
  "## Progress — what is done and where (files, functions).",
  "## Open questions — what is left, what is unclear, what you would do next.",
].join("\n");

/** What goes into a handoff note. */
export interface Handoff {
  alias: string;
  model: string;
  reason: string;
  task: string;
  /** The agent's own handoff text (the draining turn's reply), if it wrote one. */
  agentText?: string;
  /** The agent's last words otherwise (a budget stop has no draining turn). */
  lastText?: string;
  files: Record<string, FileTouch>;
  turns: number;
  tokens: number;
  usd: number;
}

/** The handoff note's path for an alias under a project root. */
export function handoffPath(root: string, alias: string): string {
  return `${root}/.ostk/handoff/${alias}.md`;
}

/**
 * Render a handoff note as Markdown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderHandoff } from "./handoff.ts";
 * const md = renderHandoff({
 *   alias: "a-1", model: "ollama:m", reason: "context 95%", task: "fix it", turns: 3,
 *   tokens: 10, usd: 0, files: { "a.txt": { gen: 2, wrote: true } },
 *   agentText: "## Progress\nhalf done\n## Open questions\nwhy?",
 * });
 * assert.ok(md.includes("- a.txt gen=2 (written)"));
 * assert.ok(md.includes("why?"));
 * ```
 */
export function renderHandoff(h: Handoff): string {
  const { progress, questions } = splitAgentText(h.agentText ?? h.lastText ?? "");
  const files = Object.entries(h.files).sort(([a], [b]) => a.localeCompare(b));
  return [
    `# Handoff: ${h.alias}`,
    "",
    `- model: ${h.model}`,
    `- stopped: ${h.reason}`,
    `- turns: ${h.turns} · tokens: ${h.tokens} · cost: $${h.usd.toFixed(4)}`,
    "",
    "## Task",
    "",
    h.task.trim() || "(no task given)",
    "",
    "## Progress",
    "",
    progress || "(the agent left no account of its progress)",
    "",
    "## Open questions",
    "",
    questions || "(none stated)",
    "",
    "## Files touched",
    "",
    ...(files.length > 0
      ? files.map(([path, t]) => `- ${path} gen=${t.gen}${t.wrote ? " (written)" : " (read)"}`)
      : ["(none)"]),
    "",
  ].join("\n");
}

/** Write the note atomically; returns its path. */
export async function writeHandoff(root: string, h: Handoff): Promise<string> {
  const path = handoffPath(root, h.alias);
  await Deno.mkdir(`${root}/.ostk/handoff`, { recursive: true });
  await atomicWrite(path, renderHandoff(h));
  return path;
}

/** Split the agent's text at an "Open questions" heading; drop a leading "Progress" heading. */
function splitAgentText(text: string): { progress: string; questions: string } {
  const lines = text.trim().split("\n");
  const at = lines.findIndex((l) => /^\s*(#+\s*)?open questions\b/i.test(l));
  const head = at < 0 ? lines : lines.slice(0, at);
  const tail = at < 0 ? [] : lines.slice(at + 1);
  const progress = head.filter((l, i) => !(i === 0 && /^\s*(#+\s*)?progress\b\W*$/i.test(l)));
  return { progress: progress.join("\n").trim(), questions: tail.join("\n").trim() };
}
