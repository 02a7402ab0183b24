/**
 * `ostk completions bash|zsh|fish`: shell completion scripts generated from the command registry,
 * so a new command or flag is completed without anyone editing a script.
 */
import { OstkError } from "../kernel/errors.ts";
import { type Command, EXIT, helpText, isVisible, out, parseFlags } from "./command.ts";
import { shellQuote } from "./shell_quote.ts";

/** One flag as completion offers it. */
export interface FlagSpec {
  /** Long name without the dashes (`json`). */
  name: string;
  /** One-letter form, when there is one (`f` for `-f, --follow`). */
  short?: string;
  /** True when the flag takes a value (`--from SEQ`). */
  value: boolean;
  /** The help text's words for it, when it has a line of its own. */
  summary?: string;
}

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = typeof SHELLS[number];

/** A help line that documents a flag: `  -f, --follow        keep printing…`. */
const HELP_FLAG = /^\s*(?:-([A-Za-z]), )?--([a-z][a-z0-9-]*)( [^\s]+)?(?:\s{2,}(.*))?$/;

/**
 * The flags of `command`: those it declares (`Command.flags`) when it does, else those its usage
 * line and its help's flag lines document; `--help` always.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { commandFlags } from "./completions.ts";
 * const flags = commandFlags({
 *   name: "x", summary: "", usage: "x [--from SEQ] [--json]",
 *   help: "  -f, --follow   keep going\n  --json   as JSON", run: () => Promise.resolve(0),
 * });
 * assert.deepEqual(flags.map((f) => [f.name, f.short, f.value]), [
 *   ["from", undefined, true], ["json", undefined, false], ["follow", "f", false],
 *   ["help", "h", false],
 * ]);
 * assert.equal(flags[2].summary, "keep going");
 * ```
 */
export function commandFlags(command: Command): FlagSpec[] {
  const documented = new Map<string, FlagSpec>();
  const add = (flag: FlagSpec) => {
    const known = documented.get(flag.name);
    documented.set(flag.name, {
      name: flag.name,
      short: known?.short ?? flag.short,
      value: (known?.value ?? false) || flag.value,
      summary: known?.summary ?? flag.summary,
    });
  };
  for (const m of command.usage.matchAll(/--([a-z][a-z0-9-]*)( [A-Z<][^\s\]|]*)?/g)) {
    add({ name: m[1], value: m[2] !== undefined });
  }
  for (const line of command.help.split("\n")) {
    const m = HELP_FLAG.exec(line);
    if (m) add({ name: m[2], short: m[1], value: m[3] !== undefined, summary: m[4]?.trim() });
  }
  let flags: FlagSpec[];
  if (command.flags) {
    flags = Object.entries(command.flags).map(([name, option]) => ({
      name,
      short: option.short,
      value: option.type === "string",
      summary: documented.get(name)?.summary,
    }));
  } else flags = [...documented.values()];
  return [
    ...flags.filter((f) => f.name !== "help"),
    { name: "help", short: "h", value: false, summary: "show this command's help" },
  ];
}

/**
 * The forms of a command's usage, each as the words after `ostk <name>`:
 * `alias new <name> [--json] | alias list [--json]` → `["new <name> [--json]", "list [--json]"]`.
 * Alternatives are split on ` | ` and on new lines, never inside `[…]` or `<…>`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { usageForms } from "./completions.ts";
 * const learn = { name: "learn", summary: "", help: "", run: () => Promise.resolve(0),
 *   usage: "learn <Agentfile | -- CMD…> [--json]\n       ostk learn --help" };
 * assert.deepEqual(usageForms(learn), ["<Agentfile | -- CMD…> [--json]", "--help"]);
 * ```
 */
export function usageForms(command: Command): string[] {
  const forms: string[] = [];
  let depth = 0;
  let current = "";
  const text = command.usage;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "[" || ch === "<") depth++;
    else if ((ch === "]" || ch === ">") && depth > 0) depth--;
    if (depth === 0 && (ch === "\n" || text.startsWith(" | ", i))) {
      forms.push(current);
      current = "";
      if (ch === " ") i += 2;
      continue;
    }
    current += ch;
  }
  forms.push(current);
  return forms.map((form) => {
    const words = form.trim().replace(/^ostk /, "");
    return words.startsWith(command.name) ? words.slice(command.name.length).trim() : words;
  });
}

/**
 * The literal words a command's first argument can be, from its usage forms:
 * `completions bash|zsh|fish` → bash, zsh, fish; `alias new … | alias list` → new, list.
 */
export function positionalChoices(command: Command): string[] {
  const choices = new Set<string>();
  for (const form of usageForms(command)) {
    const first = form.split(/\s+/)[0];
    if (/^[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*$/.test(first)) {
      for (const word of first.split("|")) choices.add(word);
    }
  }
  return [...choices];
}

interface Tree {
  /** First words in registry order, each with its summary (a group's lists its sub-commands). */
  top: [string, string][];
  /** Group → its sub-commands with their summaries. */
  groups: Map<string, [string, string][]>;
  /** Full command name → its flags. */
  flags: Map<string, FlagSpec[]>;
  /** Full command name → the literal words its first argument can be. */
  choices: Map<string, string[]>;
}

function tree(commands: readonly Command[]): Tree {
  const top = new Map<string, string>();
  const groups = new Map<string, [string, string][]>();
  const flags = new Map<string, FlagSpec[]>();
  const choices = new Map<string, string[]>();
  for (const c of commands.filter(isVisible)) {
    const [head, sub] = c.name.split(" ");
    flags.set(c.name, commandFlags(c));
    const words = positionalChoices(c);
    if (words.length > 0) choices.set(c.name, words);
    if (sub === undefined) {
      top.set(head, c.summary);
      continue;
    }
    const subs = groups.get(head) ?? [];
    subs.push([sub, c.summary]);
    groups.set(head, subs);
    top.set(head, `${subs.map(([s]) => `${head} ${s}`).join(", ")}`);
  }
  top.set("help", "help for one command: 'ostk help <command>'");
  return { top: [...top], groups, flags, choices };
}

const GLOBAL_FLAGS: FlagSpec[] = [
  { name: "help", short: "h", value: false, summary: "list the commands" },
  { name: "version", short: "V", value: false, summary: "print the version" },
];

function flagWords(flags: FlagSpec[]): string[] {
  return flags.flatMap((f) => [`--${f.name}`, ...(f.short ? [`-${f.short}`] : [])]);
}

/** One line, short enough for a completion menu. */
function brief(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

function bash(t: Tree): string {
  const groupCase = [...t.groups].map(([g, subs]) =>
    `      ${g}) list=${shellQuote(subs.map(([s]) => s).join(" "))} ;;`
  );
  const flagCase = [...t.flags].map(([name, flags]) =>
    `        ${shellQuote(name)}) list=${shellQuote(flagWords(flags).join(" "))} ;;`
  );
  const choiceCase = [...t.choices].map(([name, words]) =>
    `        ${shellQuote(name)}) list=${shellQuote(words.join(" "))} ;;`
  );
  const groups = [...t.groups.keys()].join(" ");
  return `# bash completion for ostk, generated by 'ostk completions bash' from its command registry.
# Now:    source <(ostk completions bash)
# Always: ostk completions bash > ~/.local/share/bash-completion/completions/ostk
_ostk() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} list="" i
  COMPREPLY=()
  if [[ $prev == -C ]]; then
    mapfile -t COMPREPLY < <(compgen -d -- "$cur")
    return
  fi
  # The command words typed so far: global flags and -C <dir> are not among them.
  local -a words=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    case \${COMP_WORDS[i]} in
      -C) ((i++)) ;;
      -*) ;;
      *) words+=("\${COMP_WORDS[i]}") ;;
    esac
  done
  [[ \${words[0]} == help ]] && words=("\${words[@]:1}")
  local key=\${words[0]}
  if ((\${#words[@]} == 0)); then
    if [[ $cur == -* ]]; then list=${shellQuote(`-C ${flagWords(GLOBAL_FLAGS).join(" ")}`)}
    else list=${shellQuote(t.top.map(([w]) => w).join(" "))}; fi
  elif [[ " ${groups} " == *" $key "* ]] && ((\${#words[@]} == 1)); then
    case $key in
${groupCase.join("\n")}
    esac
  else
    local n=1
    if [[ " ${groups} " == *" $key "* ]]; then
      key="$key \${words[1]}"
      n=2
    fi
    # Flags when one is being typed, a first argument's literal words when the usage names
    # some; anything else is left to bash's default (file names).
    if [[ $cur == -* ]]; then
      case $key in
${flagCase.join("\n")}
      esac
    elif ((\${#words[@]} == n)); then
      case $key in
${choiceCase.join("\n")}
      esac
    fi
  fi
  mapfile -t COMPREPLY < <(compgen -W "$list" -- "$cur")
}
complete -o default -F _ostk ostk
`;
}

/** `name:summary` for zsh's _describe, colons in the name escaped. */
function described(name: string, summary: string | undefined): string {
  const entry = name.replaceAll(":", "\\:");
  return shellQuote(summary ? `${entry}:${brief(summary)}` : entry);
}

function zsh(t: Tree): string {
  const top = t.top.map(([w, s]) => `      ${described(w, s)}`);
  const groupCase = [...t.groups].map(([g, subs]) =>
    `        (${g}) cands=(${subs.map(([s, d]) => described(s, d)).join(" ")}) ;;`
  );
  const flagCase = [...t.flags].map(([name, flags]) =>
    `      (${shellQuote(name)}) cands=(${
      flags.map((f) => described(`--${f.name}`, f.summary)).join(" ")
    }) ;;`
  );
  const choiceCase = [...t.choices].map(([name, words]) =>
    `      (${shellQuote(name)}) cands=(${words.map(shellQuote).join(" ")}) ;;`
  );
  return `#compdef ostk
# zsh completion for ostk, generated by 'ostk completions zsh' from its command registry.
# Now (after compinit):  source <(ostk completions zsh)
# Always: ostk completions zsh > ~/.zfunc/_ostk, with fpath=(~/.zfunc $fpath) before compinit
_ostk() {
  local -a typed cands
  local i key
  if [[ \${words[CURRENT-1]} == -C ]]; then
    _files -/
    return
  fi
  # The command words typed so far: global flags and -C <dir> are not among them.
  for ((i = 2; i < CURRENT; i++)); do
    case \${words[i]} in
      (-C) ((i++)) ;;
      (-*) ;;
      (*) typed+=("\${words[i]}") ;;
    esac
  done
  [[ \${typed[1]} == help ]] && shift typed
  if ((\${#typed} == 0)); then
    if [[ $PREFIX == -* ]]; then
      cands=(${
    [{ name: "C", summary: "run as if ostk was started in <dir>" }, ...GLOBAL_FLAGS].map((f) =>
      described(f.name === "C" ? "-C" : `--${f.name}`, f.summary)
    ).join(" ")
  })
      _describe -t options 'ostk flag' cands
      return
    fi
    cands=(
${top.join("\n")}
    )
    _describe -t commands 'ostk command' cands
    return
  fi
  key=\${typed[1]}
  local n=1
  case $key in
    (${[...t.groups.keys()].join("|")})
      if ((\${#typed} == 1)); then
        case $key in
${groupCase.join("\n")}
        esac
        _describe -t commands "ostk $key command" cands
        return
      fi
      key="$key \${typed[2]}"
      n=2 ;;
  esac
  if [[ $PREFIX == -* ]]; then
    case $key in
${flagCase.join("\n")}
    esac
    _describe -t options "ostk $key flag" cands
    return
  fi
  if ((\${#typed} == n)); then
    case $key in
${choiceCase.join("\n")}
    esac
  fi
  if ((\${#cands})); then
    compadd -a cands
  else
    _files
  fi
}
if [[ \${zsh_eval_context[-1]} == loadautoload ]]; then
  _ostk "$@"
else
  compdef _ostk ostk
fi
`;
}

/** A fish string in single quotes. */
function fishQuote(text: string): string {
  return `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

function fish(t: Tree): string {
  const lines: string[] = [];
  const describe = (summary: string | undefined) =>
    summary ? ` -d ${fishQuote(brief(summary))}` : "";
  for (const [w, s] of t.top) {
    lines.push(`complete -c ostk -f -n '__ostk_at' -a ${fishQuote(w)}${describe(s)}`);
  }
  for (const [g, subs] of t.groups) {
    for (const [s, d] of subs) {
      lines.push(`complete -c ostk -f -n '__ostk_at ${g}' -a ${fishQuote(s)}${describe(d)}`);
    }
  }
  for (const [name, words] of t.choices) {
    lines.push(`complete -c ostk -f -n '__ostk_at ${name}' -a ${fishQuote(words.join(" "))}`);
  }
  for (const [name, flags] of t.flags) {
    for (const f of flags) {
      lines.push(
        `complete -c ostk -n '__ostk_in ${name}' -l ${f.name}${f.short ? ` -s ${f.short}` : ""}${
          f.value ? " -r" : ""
        }${describe(f.summary)}`,
      );
    }
  }
  return `# fish completion for ostk, generated by 'ostk completions fish' from its command registry.
# Now:    ostk completions fish | source
# Always: ostk completions fish > ~/.config/fish/completions/ostk.fish

# The command words typed so far: global flags and -C <dir> are not among them.
function __ostk_words
    set -l skip 0
    for t in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
        else if test "$t" = -C
            set skip 1
        else if not string match -q -- '-*' $t
            echo $t
        end
    end
end

# True when the command words typed so far are exactly $argv ('help' in front ignored).
function __ostk_at
    set -l typed (__ostk_words)
    test "$typed[1]" = help; and set -e typed[1]
    test (count $typed) -eq (count $argv); or return 1
    for i in (seq (count $argv))
        test "$typed[$i]" = "$argv[$i]"; or return 1
    end
end

# True when the command words typed so far start with $argv.
function __ostk_in
    set -l typed (__ostk_words)
    test (count $typed) -ge (count $argv); or return 1
    for i in (seq (count $argv))
        test "$typed[$i]" = "$argv[$i]"; or return 1
    end
end

complete -c ostk -e
complete -c ostk -n '__ostk_at' -s C -r -f -a '(__fish_complete_directories)' -d ${
    fishQuote("run as if ostk was started in <dir>")
  }
${
    GLOBAL_FLAGS.map((f) =>
      `complete -c ostk -n '__ostk_at' -l ${f.name} -s ${f.short}${describe(f.summary)}`
    ).join("\n")
  }
${lines.join("\n")}
`;
}

/**
 * The completion script for `shell` over `commands`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { completionScript } from "./completions.ts";
 * const commands = [{
 *   name: "log", summary: "Print the log.", usage: "log [--json]", help: "",
 *   run: () => Promise.resolve(0),
 * }];
 * assert.match(completionScript("bash", commands), /complete -o default -F _ostk ostk/);
 * assert.match(completionScript("fish", commands), /-n '__ostk_in log' -l json/);
 * ```
 */
export function completionScript(shell: Shell, commands: readonly Command[]): string {
  const t = tree(commands);
  return shell === "bash" ? bash(t) : shell === "zsh" ? zsh(t) : fish(t);
}

/**
 * The `completions` command over the registry `commands()` returns (a function, because the
 * registry lists this command too).
 */
export function completionsCommand(commands: () => readonly Command[]): Command {
  const command: Command = {
    name: "completions",
    summary: "Print a shell completion script for bash, zsh or fish.",
    usage: "completions bash|zsh|fish",
    help:
      `Commands, sub-commands and each command's flags, from the same registry 'ostk --help' reads.

  bash   source <(ostk completions bash), or save it as
         ~/.local/share/bash-completion/completions/ostk
  zsh    source <(ostk completions zsh) after compinit, or save it as _ostk in a directory
         on $fpath
  fish   ostk completions fish | source, or save it as ~/.config/fish/completions/ostk.fish`,
    flags: {},
    run(ctx) {
      const { values, positionals } = parseFlags("completions", ctx.argv, {}, true);
      if (values.help) {
        out(helpText(command));
        return Promise.resolve(EXIT.ok);
      }
      const shell = positionals[0];
      if (positionals.length !== 1 || !(SHELLS as readonly string[]).includes(shell)) {
        throw new OstkError(
          "usage",
          positionals.length === 0
            ? "expected a shell: bash, zsh or fish"
            : `expected one of bash, zsh, fish, not '${positionals.join(" ")}'`,
          {},
          "see 'ostk completions --help'",
        );
      }
      out(completionScript(shell as Shell, commands()).trimEnd());
      return Promise.resolve(EXIT.ok);
    },
  };
  return command;
}
