/** `ostk init [dir]`: create `.ostk/` and, once per user, the operator key. */
import { loadOrCreateOperatorKey } from "../kernel/identity.ts";
import { initProject } from "../kernel/project_init.ts";
import { type Command, EXIT, helpText, out, outJson, parseFlags } from "./command.ts";

export const initCommand: Command = {
  name: "init",
  summary: "Create .ostk/ in a directory (default: the current one). Safe to run twice.",
  usage: "init [dir] [--json]",
  help: `Creates HUMANFILE, pins/default/pin.caps, agents/, drain/, audit.jsonl (with a first
signed os.init row), gen_table.jsonl, .gitignore and identity.pub. The operator's private key is
created once per user under $XDG_CONFIG_HOME/ostk/ or ~/.config/ostk/ (OSTK_IDENTITY overrides).

  --json   print what was created as JSON`,
  async run(ctx) {
    const { values, positionals } = parseFlags("init", ctx.argv, {
      json: { type: "boolean" },
    }, true);
    if (values.help) {
      out(helpText(initCommand));
      return EXIT.ok;
    }
    const dir = positionals[0] ? resolveFrom(ctx.cwd, positionals[0]) : ctx.cwd;
    const key = await loadOrCreateOperatorKey();
    const result = await initProject(dir, key);
    if (values.json) {
      outJson({
        root: result.root,
        existed: result.existed,
        created: result.created,
        operator: key.fingerprint,
        key_path: key.path,
        key_created: key.created,
      });
      return EXIT.ok;
    }
    if (key.created) out(`created operator key ${key.fingerprint} at ${key.path}`);
    if (result.existed && result.created.length === 0) {
      out(`already initialised: ${result.root}/.ostk (nothing to do)`);
    } else if (result.existed) {
      out(`already initialised: ${result.root}/.ostk; restored ${result.created.join(", ")}`);
    } else {
      out(`initialised ${result.root}/.ostk`);
      for (const part of result.created) out(`  + ${part}`);
    }
    return EXIT.ok;
  },
};

/** `path` made absolute against `cwd`. */
export function resolveFrom(cwd: string, path: string): string {
  return path.startsWith("/") ? path : `${cwd}/${path}`;
}
