/**
 * API keys: where they come from and how they are kept out of everything the model, the
 * transcripts and the audit log see. A key is read from (in order) an explicit value, a
 * HUMANFILE `SECRET <provider> env:NAME` or `SECRET <provider> cmd:<command>` line, then the
 * provider's usual variable (`ANTHROPIC_API_KEY`, `OPENAI_API_KEY`). `openai-compatible`
 * servers get a key only from a SECRET line, so an OpenAI key is never sent to a third party.
 */
import { parseHumanfile } from "../../kernel/humanfile.ts";
import { ProviderError } from "./errors.ts";

/** Where a SECRET line says a key lives. */
export type SecretRef = { kind: "env"; name: string } | { kind: "cmd"; command: string };

/** Something that yields a provider's key, once, on first use. */
export interface KeySource {
  get(): Promise<string | undefined>;
}

const DEFAULT_ENV: Record<string, string | undefined> = {
  anthropic: "ANTHROPIC_API_KEY",
  openai: "OPENAI_API_KEY",
};

const CMD_TIMEOUT_MS = 10_000;
const MIN_SECRET_CHARS = 8;
const MASK = "[REDACTED]";

/**
 * The SECRET lines of a HUMANFILE, provider → where its key lives (the first line wins).
 * `parseHumanfile` keeps one preference per keyword, so each line is parsed on its own.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { secretRefs } from "./secrets.ts";
 * const refs = secretRefs("SECRET anthropic env:MY_KEY # mine\nSECRET openai cmd:pass show oa\n");
 * assert.equal(refs.get("anthropic")?.kind, "env");
 * const oa = refs.get("openai");
 * assert.equal(oa?.kind, "cmd");
 * assert.equal(oa.command, "pass show oa");
 * ```
 */
export function secretRefs(humanfile: string): Map<string, SecretRef> {
  const refs = new Map<string, SecretRef>();
  for (const line of humanfile.split("\n")) {
    const value = parseHumanfile(line).prefs.get("SECRET");
    if (value === undefined) continue;
    const m = /^(\S+)\s+(env|cmd):(.+)$/.exec(value);
    if (!m || refs.has(m[1])) continue;
    refs.set(
      m[1],
      m[2] === "env" ? { kind: "env", name: m[3].trim() } : { kind: "cmd", command: m[3].trim() },
    );
  }
  return refs;
}

/** The key source for one provider; the key is looked up on first use and then kept. */
export function keySourceFor(
  provider: string,
  options: {
    env: { get(name: string): string | undefined };
    humanfile?: string;
    apiKey?: string;
  },
): KeySource {
  let pending: Promise<string | undefined> | undefined;
  const lookup = async (): Promise<string | undefined> => {
    if (options.apiKey !== undefined) return options.apiKey;
    const ref = options.humanfile ? secretRefs(options.humanfile).get(provider) : undefined;
    if (ref?.kind === "env") return nonEmpty(options.env.get(ref.name));
    if (ref?.kind === "cmd") return await runSecretCommand(provider, ref.command);
    const name = DEFAULT_ENV[provider];
    return name ? nonEmpty(options.env.get(name)) : undefined;
  };
  return { get: () => pending ??= lookup() };
}

/**
 * Replace every occurrence of each secret (8 characters or more) with `[REDACTED]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maskSecrets } from "./secrets.ts";
 * assert.equal(maskSecrets("key=sk-abc123456", ["sk-abc123456"]), "key=[REDACTED]");
 * ```
 */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  const sorted = secrets.filter((s) => s.length >= MIN_SECRET_CHARS).sort((a, b) =>
    b.length - a.length
  );
  for (const secret of sorted) {
    if (out.includes(secret)) out = out.split(secret).join(MASK);
  }
  return out;
}

/** Run a SECRET command; its stdout (trimmed) is the key. Its output never enters a message. */
async function runSecretCommand(provider: string, command: string): Promise<string> {
  const fail = (why: string): never => {
    throw new ProviderError("auth", `SECRET ${provider} cmd: ${why}`);
  };
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("sh", {
      args: ["-c", command],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      signal: AbortSignal.timeout(CMD_TIMEOUT_MS),
    }).output();
  } catch (err) {
    return fail(`could not run (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!output.success) fail(`exited with status ${output.code}`);
  const key = new TextDecoder().decode(output.stdout).trim();
  if (key === "") fail("printed nothing");
  return key;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}
