/**
 * Dangerous-command detection for the shell tool: a command that matches one of the named
 * patterns below runs only after the operator approves it.
 *
 * How a command is read: quotes are removed the way `sh` removes them, the line is split into
 * simple commands on `;`, `&&`, `||`, `|`, `&`, newlines and parentheses, and the text inside
 * `$( )`, backticks, `<( )`, `sh -c '…'`, `eval …`, `ssh host '…'` and here-documents fed to a
 * shell is read again as a command, so a dangerous segment anywhere counts. Wrappers (`sudo`,
 * `env X=1`, `command`, `nohup`, `timeout 5`, `xargs`…) and leading `X=1` assignments are
 * skipped to find the command that really runs.
 *
 * Decisions worth knowing:
 * - Quoted text given to a command as data does not count: `echo "rm -rf /"` and
 *   `git commit -m "DROP TABLE"` pass; `sh -c "rm -rf /"` and `echo "$(rm -rf /)"` do not.
 *   SQL is the exception: a DROP anywhere in a command that also runs a SQL client
 *   (`echo "DROP TABLE t" | psql`) counts.
 * - `rm -r` of `.`, `..`, `*` or `./*` always counts: without knowing the cwd we cannot tell
 *   whether it is the project root, and wiping the current directory deserves a confirmation.
 * - A force push (`-f`, `--force`, `--force-with-lease`, `--mirror`, `+refspec`) counts unless
 *   every refspec names a branch other than main, master or release*; with no refspec the
 *   target is the current branch, which may be protected, so it counts.
 * - `git clean` counts whenever it is forced (`-f`) and neither dry-run (`-n`) nor interactive.
 *
 * This is a tripwire for honest mistakes, not a sandbox: variables (`X="rm -rf /"; $X`),
 * scripts on disk and interpreters' own APIs get past it. The sandbox is the layer that holds.
 */

/** A match: which pattern fired and why, in words an operator can judge. */
export interface Danger {
  pattern: string;
  reason: string;
}

/** One simple command as the shell would run it. */
interface Segment {
  words: string[];
  redirects: { op: string; target: string }[];
  /** Text of here-documents attached to this command (its stdin). */
  heredoc: string;
  /** Segments joined by `|` share a pipeline number. */
  pipeline: number;
}

interface Parsed {
  src: string;
  segments: Segment[];
  /** Inner text of `$( )`, backticks and `<( )`, to be read as commands of their own. */
  nested: string[];
  /** The source with quoted text left out, for patterns that are pure syntax. */
  blanked: string;
}

/** The command a segment runs after wrappers are skipped; `name` is a basename. */
interface Cmd {
  name: string;
  args: string[];
}

type Test = (c: Cmd | undefined, seg: Segment, p: Parsed) => string | undefined;

const MAX_DEPTH = 6;
const SHELLS = new Set(["sh", "bash", "zsh", "dash", "ksh", "ash", "fish", "su"]);
const FETCHERS = new Set(["curl", "wget", "fetch"]);
const ROOTISH =
  /^\/(\*|\.\*?|(bin|boot|dev|etc|home|lib|lib32|lib64|opt|proc|root|sbin|srv|sys|usr|var|System|Library|Users|Applications)(\/\*)?)?$/;
const HOMEISH = /^(~[\w.-]*|\$HOME|\$\{HOME\}|\/home\/[^/*]+|\/Users\/[^/*]+)(\/\*|\/\.\*)?$/;
const CWDISH = /^(\.|\.\.|\*|\.\*|\.\/\*|\.\.\/\*|\$PWD|\$\{PWD\}|\$\(pwd\)|`pwd`)$/;
const SAFE_DEV =
  /^\/dev\/(null|zero|full|u?random|stdout|stderr|stdin|tty|fd\/\d+|pts\/\d+|shm\/.*)$/;
const BLOCK_DEV =
  /^\/dev\/(sd[a-z]+\d*|hd[a-z]\d*|vd[a-z]\d*|xvd[a-z]\d*|nvme\d+(n\d+)?(p\d+)?|mmcblk\d+(p\d+)?|r?disk\d+(s\d+)?|loop\d+|md\d+|dm-\d+|mapper\/.+|sr\d+|mem|kmem|port)$/;
const PROTECTED = /^(main|master|release.*|HEAD|)$/;
const SQL_CLIENTS =
  /^(psql|mysql|mariadb|sqlite3?|sqlcmd|clickhouse(-client)?|cockroach|duckdb|cqlsh|snowsql)$/;
const SQL_DROP = /\b(drop\s+(table|database|schema)|truncate\s+table)\b/i;
const SECRET =
  /(\.ssh\/(id_[\w*-]+|\*)|\.aws\/credentials|\.(bash|zsh|sh|python|mysql|psql|node_repl)_history|\/etc\/(g?shadow|master\.passwd)|\.netrc|\.git-credentials|\.pgpass|\.docker\/config\.json|\.gnupg\/private-keys\S*)$/;
/** Commands that only look at a path's metadata or use a key as intended. */
const META_ONLY =
  /^(ls|stat|test|\[|chmod|chown|chgrp|ssh|ssh-keygen|ssh-add|touch|mkdir|file|realpath|readlink)$/;
const CRITICAL =
  /^((~|\$HOME|\$\{HOME\}|\/root|\/home\/[^/]+)\/\.(bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile|zshenv)|\/etc\/(passwd|shadow|group|sudoers|fstab|hosts|resolv\.conf))$/;
const FORK_LOOP =
  /\bfork\s+while\s+fork\b|while\s*\(?\s*(1|true|True)\s*\)?\s*[:{]?\s*(os\.)?fork\b/;
/** Wrappers to skip before the real command: [short options with a value, long ones]. */
const WRAPPERS: Record<string, [string, string[]]> = {
  sudo: ["ugpChDrtUT", ["user", "group", "prompt", "chdir", "host", "role", "type"]],
  env: ["uCS", ["unset", "chdir", "split-string"]],
  xargs: ["IdnLPasE", ["delimiter", "max-args", "max-procs", "arg-file", "replace"]],
  ionice: ["cnp", ["class", "classdata", "pid"]],
  timeout: ["sk", ["signal", "kill-after"]],
  nice: ["n", ["adjustment"]],
  doas: ["uC", []],
  stdbuf: ["ioe", []],
  exec: ["a", []],
  time: ["fo", []],
  ...Object.fromEntries(
    "nohup command builtin chronic unbuffer ! { if then else elif do while until".split(" ")
      .map((w) => [w, ["", []]]),
  ),
};

const rm = (c: Cmd | undefined, which: RegExp): string | undefined => {
  if (c?.name !== "rm") return undefined;
  const f = flags(c.args);
  if (!f.short.has("r") && !f.short.has("R") && !f.long.has("recursive")) return undefined;
  if (which === ROOTISH && f.long.has("no-preserve-root")) return "rm --no-preserve-root";
  const hit = f.rest.map(normTarget).find((t) => which.test(t));
  return hit === undefined ? undefined : `rm -r ${hit}`;
};

const RULES: { name: string; about: string; test: Test }[] = [
  {
    name: "rm-root",
    about: "recursive delete of / or a top-level system directory",
    test: (c) => rm(c, ROOTISH),
  },
  { name: "rm-home", about: "recursive delete of the home directory", test: (c) => rm(c, HOMEISH) },
  {
    name: "rm-cwd",
    about: "recursive delete of the current directory (., .., *): possibly the project root",
    test: (c) => rm(c, CWDISH),
  },
  {
    name: "find-delete-root",
    about: "find -delete or -exec rm starting at / or the home directory",
    test: (c) => {
      if (c?.name !== "find") return undefined;
      const starts = c.args.filter((a) => !/^-[HLP]$/.test(a));
      const end = starts.findIndex((a) => /^[-(!]/.test(a));
      const roots = starts.slice(0, end < 0 ? undefined : end).map(normTarget);
      const deletes = c.args.some((a, i) =>
        a === "-delete" || (/^-(exec|execdir|ok)$/.test(a) && /^(rm|shred)$/.test(c.args[i + 1]))
      );
      const root = roots.find((r) => ROOTISH.test(r) || HOMEISH.test(r));
      return deletes && root ? `find ${root} deleting what it finds` : undefined;
    },
  },
  {
    name: "git-force-push",
    about: "force push to main, master or release* (or to an unnamed current branch)",
    test: (c) => gitForcePush(gitSub(c)),
  },
  {
    name: "git-reset-hard",
    about: "git reset --hard discards uncommitted work",
    test: (c) => {
      const g = gitSub(c);
      return g?.sub === "reset" && g.args.includes("--hard") ? "git reset --hard" : undefined;
    },
  },
  {
    name: "git-clean-force",
    about: "forced git clean deletes untracked (and with -x ignored) files for good",
    test: (c) => {
      const g = gitSub(c);
      if (g?.sub !== "clean") return undefined;
      const f = flags(g.args);
      const force = f.short.has("f") || f.long.has("force");
      const safe = f.short.has("n") || f.short.has("i") || f.long.has("dry-run") ||
        f.long.has("interactive");
      return force && !safe ? `git clean ${g.args.join(" ")}` : undefined;
    },
  },
  {
    name: "dd-device",
    about: "dd writing onto a device",
    test: (c) => {
      const of = c?.name === "dd" ? c.args.find((a) => a.startsWith("of=/dev/")) : undefined;
      return of && !SAFE_DEV.test(of.slice(3)) ? `dd ${of}` : undefined;
    },
  },
  {
    name: "format-device",
    about: "mkfs, wipefs, shred or a partitioner run on a device",
    test: (c) => {
      if (
        !c ||
        !/^(mkfs(\.\w+)?|mke2fs|mkswap|mkdosfs|mkntfs|wipefs|shred|s?fdisk|cfdisk|gdisk|sgdisk|parted|blkdiscard)$/
          .test(c.name)
      ) return undefined;
      if (c.args.some((a) => a === "-l" || a === "--list")) return undefined;
      const dev = c.args.find((a) => a.startsWith("/dev/") && !SAFE_DEV.test(a));
      return dev ? `${c.name} ${dev}` : undefined;
    },
  },
  {
    name: "chmod-world-writable",
    about: "recursive chmod that makes files world-writable (777, o+w, a+rwx)",
    test: (c) => {
      if (c?.name !== "chmod") return undefined;
      const f = flags(c.args);
      if (!f.short.has("R") && !f.long.has("recursive")) return undefined;
      const mode = f.rest[0] ?? "";
      const open = /^[0-7]{3,4}$/.test(mode) ? "2367".includes(mode.at(-1)!) : mode.split(",")
        .some((p) => /^[ugoa]*[oa][ugoa]*[+=][rwxXst]*w/.test(p));
      return open ? `chmod -R ${mode}` : undefined;
    },
  },
  {
    name: "curl-pipe-shell",
    about: "a downloaded script run unseen (curl … | sh, bash <(curl …))",
    test: (c, seg, p) => {
      if (!c) return undefined;
      const interp = SHELLS.has(c.name) || /^(python[\d.]*|perl|ruby|node)$/.test(c.name);
      const me = p.segments.indexOf(seg);
      const fetcher = p.segments.slice(0, me).find((s) =>
        s.pipeline === seg.pipeline && FETCHERS.has(commandOf(s.words)?.name ?? "")
      );
      if (interp && fetcher && readsStdin(c)) {
        return `${commandOf(fetcher.words)?.name} | ${c.name}`;
      }
      const runner = SHELLS.has(c.name) || /^(eval|source|\.)$/.test(c.name);
      const sub = /(\$\(|<\(|`)\s*(sudo\s+)?(curl|wget|fetch)\b/;
      return runner && c.args.some((a) => sub.test(a)) ? `${c.name} of fetched text` : undefined;
    },
  },
  {
    name: "fork-bomb",
    about: "a function or loop that forks itself without end",
    test: (c) =>
      c && /^(perl|python[\d.]*|ruby)$/.test(c.name) && c.args.some((a) => FORK_LOOP.test(a))
        ? `${c.name} fork loop`
        : undefined,
  },
  {
    name: "write-block-device",
    about: "output redirected or copied onto a block device or /dev/mem",
    test: (c, seg) => {
      const r = seg.redirects.find((r) =>
        /^(>|>>|>\||&>|&>>|<>)$/.test(r.op) && BLOCK_DEV.test(r.target)
      );
      if (r) return `${r.op} ${r.target}`;
      const rest = c ? flags(c.args).rest : [];
      const dest = c?.name === "tee"
        ? rest.find((a) => BLOCK_DEV.test(a))
        : /^(cp|mv|install|rsync)$/
            .test(c?.name ?? "") && BLOCK_DEV.test(rest.at(-1) ?? "")
        ? rest.at(-1)
        : undefined;
      return dest ? `${c!.name} onto ${dest}` : undefined;
    },
  },
  {
    name: "sql-drop",
    about: "DROP TABLE/DATABASE/SCHEMA or TRUNCATE TABLE sent to a SQL client, or dropdb",
    test: (c, _seg, p) => {
      if (c?.name === "dropdb") return `dropdb ${c.args.join(" ")}`;
      if (!c || !SQL_CLIENTS.test(c.name)) return undefined;
      const m = p.src.match(SQL_DROP);
      return m ? `'${m[0]}' sent to ${c.name}` : undefined;
    },
  },
  {
    name: "kill-all",
    about: "kill -9 -1 (every process you may signal), kill of PID 1, killall5",
    test: (c) => {
      if (c?.name === "killall5") return "killall5";
      if (c?.name !== "kill" || /^-[lL]$/.test(c.args[0] ?? "")) return undefined;
      let i = /^-[sn]$/.test(c.args[0] ?? "")
        ? 2
        : /^-./.test(c.args[0] ?? "") && c.args[0] !== "--"
        ? 1
        : 0;
      if (c.args[i] === "--") i++;
      const pid = c.args.slice(i).find((a) => a === "-1" || a === "1");
      return pid ? `kill ${c.args.join(" ")}` : undefined;
    },
  },
  {
    name: "credential-read",
    about: "reads or sends private keys, cloud credentials, shell history or /etc/shadow",
    test: (c, seg) => {
      const args = c && !META_ONLY.test(c.name)
        ? c.args.filter((_, i) => c.args[i - 1] !== "-i")
        : [];
      const files = seg.redirects.filter((r) => !r.op.startsWith("<<")).map((r) => r.target);
      const hit = [...args, ...files].find((a) => SECRET.test(a));
      return hit ? `${c?.name ?? "redirect"} ${hit}` : undefined;
    },
  },
  {
    name: "shutdown",
    about: "shutdown, reboot, halt or poweroff of the machine",
    test: (c) => {
      if (!c) return undefined;
      if (/^(shutdown|reboot|halt|poweroff)$/.test(c.name)) {
        return c.args.some((a) => /^(-c|--help)$/.test(a)) ? undefined : c.name;
      }
      if (/^(init|telinit)$/.test(c.name) && /^[06]$/.test(c.args[0] ?? "")) {
        return `${c.name} ${c.args[0]}`;
      }
      const verb = c.args.find((a) => !a.startsWith("-"));
      return /^(systemctl|loginctl)$/.test(c.name) &&
          /^(poweroff|reboot|halt|kexec)$/.test(verb ?? "")
        ? `${c.name} ${verb}`
        : undefined;
    },
  },
  {
    name: "truncate-critical-file",
    about: "truncates a shell startup file or a system file such as /etc/passwd",
    test: (c, seg) => {
      const r = seg.redirects.find((r) => /^(>|>\||&>)$/.test(r.op) && CRITICAL.test(r.target));
      if (r) return `${r.op} ${r.target}`;
      const hit = c?.name === "truncate" ? c.args.find((a) => CRITICAL.test(a)) : undefined;
      return hit ? `truncate ${hit}` : undefined;
    },
  },
];

/** The named patterns, in the order they are tried. */
export const DANGER_PATTERNS: readonly { name: string; about: string }[] = RULES.map((r) => ({
  name: r.name,
  about: r.about,
}));

/**
 * The first dangerous pattern `cmd` matches, or undefined when none does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { detectDanger } from "./dangerous.ts";
 * assert.equal(detectDanger("cd src && sudo rm -rf /")?.pattern, "rm-root");
 * assert.equal(detectDanger("rm -rf ./build"), undefined);
 * ```
 */
export function detectDanger(cmd: string): Danger | undefined {
  return analyse(cmd, 0);
}

function analyse(src: string, depth: number): Danger | undefined {
  if (depth > MAX_DEPTH) return undefined;
  const p = lex(src);
  const bare = p.blanked.replace(/\s+/g, "");
  if (
    /(?:^|[^\w:.-])([\w:.-]+)\(\)\{[^{}]*?\1\|\1&|function([\w:.-]+)(?:\(\))?\{[^{}]*?\2\|\2&/.test(
      bare,
    )
  ) {
    return { pattern: "fork-bomb", reason: "a function that pipes into itself in the background" };
  }
  for (const seg of p.segments) {
    const c = commandOf(seg.words);
    for (const rule of RULES) {
      const why = rule.test(c, seg, p);
      if (why) return { pattern: rule.name, reason: `${rule.about}: ${why}` };
    }
    for (const script of scriptsOf(c, seg)) {
      const inner = analyse(script, depth + 1);
      if (inner) return inner;
    }
  }
  for (const inner of p.nested) {
    const found = analyse(inner, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** Text a segment hands to another shell: `sh -c`, `eval`, `ssh host cmd`, `sh <<EOF`. */
function scriptsOf(c: Cmd | undefined, seg: Segment): string[] {
  if (!c) return [];
  if (c.name === "eval" || c.name === "watch") {
    return [c.args.filter((a) => !a.startsWith("-")).join(" ")];
  }
  if (c.name === "ssh") {
    let i = 0;
    while (i < c.args.length && c.args[i].startsWith("-")) {
      i += /^-[bcDEeFIiJLlmOopQRSWw]$/.test(c.args[i]) ? 2 : 1;
    }
    return c.args.length > i + 1 ? [c.args.slice(i + 1).join(" ")] : [];
  }
  if (!SHELLS.has(c.name)) return [];
  const flag = c.args.findIndex((a) => /^-[a-zA-Z]*c[a-zA-Z]*$/.test(a));
  if (flag >= 0) {
    return [c.args[flag + 1] === "--" ? c.args[flag + 2] : c.args[flag + 1]].filter(Boolean);
  }
  return seg.heredoc ? [seg.heredoc] : [];
}

function gitSub(c: Cmd | undefined): { sub: string; args: string[] } | undefined {
  if (c?.name !== "git") return undefined;
  let i = 0;
  while (i < c.args.length && c.args[i].startsWith("-")) {
    i += /^(-C|-c|--git-dir|--work-tree|--namespace|--exec-path|--config-env)$/.test(c.args[i])
      ? 2
      : 1;
  }
  return i < c.args.length ? { sub: c.args[i], args: c.args.slice(i + 1) } : undefined;
}

function gitForcePush(g: { sub: string; args: string[] } | undefined): string | undefined {
  if (g?.sub !== "push") return undefined;
  // Options whose value is a separate word would otherwise be read as the remote.
  const args = g.args.filter((_, i) =>
    !/^(-o|--push-option|--repo|--receive-pack|--exec)$/.test(g.args[i - 1])
  );
  const f = flags(args);
  const forced = f.short.has("f") || f.long.has("force") || f.long.has("force-with-lease") ||
    f.long.has("mirror");
  const [_remote, ...refspecs] = f.rest;
  if (forced && (f.long.has("all") || f.long.has("mirror") || f.long.has("branches"))) {
    return "force push of every branch";
  }
  if (forced && refspecs.length === 0) return "force push of the current branch (no branch named)";
  for (const spec of refspecs) {
    const dest = spec.replace(/^\+/, "").split(":").at(-1)!.replace(/^refs\/heads\//, "");
    if ((forced || spec.startsWith("+")) && PROTECTED.test(dest)) {
      return `force push to '${dest || spec}'`;
    }
  }
  return undefined;
}

/** Short flags (letters of `-rf`), long flags (names of `--force=x`) and the other words. */
function flags(args: string[]): { short: Set<string>; long: Set<string>; rest: string[] } {
  const short = new Set<string>();
  const long = new Set<string>();
  const rest: string[] = [];
  let ended = false;
  for (const a of args) {
    if (ended || a === "-" || !a.startsWith("-")) rest.push(a);
    else if (a === "--") ended = true;
    else if (a.startsWith("--")) long.add(a.slice(2).split("=")[0]);
    else for (const ch of a.slice(1)) short.add(ch);
  }
  return { short, long, rest };
}

/** True when an interpreter would take its program from stdin. */
function readsStdin(c: Cmd): boolean {
  if (c.args.includes("-s")) return true;
  return c.args.every((a) => a.startsWith("-") && !/^-([cmepE]|-eval)$/.test(a));
}

function normTarget(t: string): string {
  return t === "/" ? t : t.replace(/\/{2,}/g, "/").replace(/(.)\/$/, "$1");
}

function basename(word: string): string {
  return word.replace(/^.*\//, "");
}

/** Skip assignments and wrappers such as `sudo -u x`, `env -i`, `timeout 5`, `nice -n 5`. */
function commandOf(words: string[]): Cmd | undefined {
  let i = 0;
  while (i < words.length) {
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i])) {
      i++;
      continue;
    }
    const name = basename(words[i]);
    const spec = WRAPPERS[name];
    if (!spec) return { name, args: words.slice(i + 1) };
    // `command -v rm` looks a name up; it runs nothing.
    if (name === "command" && /^-[vV]$/.test(words[i + 1] ?? "")) return undefined;
    i++;
    while (i < words.length && words[i].startsWith("-") && words[i] !== "-") {
      const opt = words[i++];
      if (opt === "--") break;
      if (opt.startsWith("--")) {
        if (!opt.includes("=") && spec[1].includes(opt.slice(2))) i++;
      } else if (spec[0].includes(opt.at(-1)!) && opt.length === 2) i++;
    }
    if (name === "timeout") i++; // the duration
  }
  return undefined;
}

/** Split `src` into simple commands the way `sh` would, without expanding anything. */
function lex(src: string): Parsed {
  const p: Parsed = { src, segments: [], nested: [], blanked: "" };
  let pipeline = 0;
  let seg: Segment = { words: [], redirects: [], heredoc: "", pipeline };
  let word = "";
  let inWord = false;
  let quote: "'" | '"' | undefined;
  let redirect: string | undefined;
  const pending: { delim: string; strip: boolean; seg: Segment }[] = [];
  const endWord = () => {
    if (!inWord) return;
    if (redirect) {
      seg.redirects.push({ op: redirect, target: word });
      if (redirect === "<<" || redirect === "<<-") {
        pending.push({ delim: word, strip: redirect === "<<-", seg });
      }
    } else seg.words.push(word);
    word = "";
    inWord = false;
    redirect = undefined;
  };
  const endSeg = (pipe: boolean) => {
    endWord();
    redirect = undefined;
    if (seg.words.length > 0 || seg.redirects.length > 0) p.segments.push(seg);
    if (!pipe) pipeline++;
    seg = { words: [], redirects: [], heredoc: "", pipeline };
  };
  /** `$(…)`, `<(…)`: record the inner text, keep the raw form in the word, return the `)`. */
  const substitute = (open: number, prefix: string) => {
    const close = matchParen(src, open);
    p.nested.push(src.slice(open, close));
    word += prefix + src.slice(open, close) + ")";
    inWord = true;
    return close;
  };
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
      continue;
    }
    if (c === "\\") {
      if (src[i + 1] !== "\n") {
        if (quote && !'$`"\\'.includes(src[i + 1])) word += c;
        word += src[i + 1] ?? "";
        inWord = true;
      }
      i++;
      continue;
    }
    if (c === "$" && src[i + 1] === "(") {
      if (src[i + 2] !== "(") i = substitute(i + 2, "$(");
      else { // arithmetic $(( )): plain text
        const close = matchParen(src, i + 2);
        word += src.slice(i, close + 1);
        i = close;
      }
      continue;
    }
    if (c === "`") {
      const close = src.indexOf("`", i + 1) < 0 ? src.length : src.indexOf("`", i + 1);
      p.nested.push(src.slice(i + 1, close));
      word += src.slice(i, close + 1);
      inWord = true;
      i = close;
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = undefined;
      else word += c;
      continue;
    }
    p.blanked += c;
    if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if ((c === "<" || c === ">") && src[i + 1] === "(") {
      endWord();
      i = substitute(i + 2, `${c}(`);
    } else if (c === ">" || c === "<" || (c === "&" && src[i + 1] === ">")) {
      if (inWord && /^\d+$/.test(word)) [word, inWord] = ["", false]; // an fd number: 2>
      endWord();
      const op = src.slice(i).match(/^(&>>|&>|>>|>\||>&|>|<<<|<<-|<<|<>|<&|<)/)![0];
      redirect = op;
      i += op.length - 1;
    } else if (c === " " || c === "\t") endWord();
    else if (c === "#" && !inWord) {
      while (i + 1 < src.length && src[i + 1] !== "\n") i++;
    } else if (c === "|") {
      const or = src[i + 1] === "|";
      endSeg(!or);
      if (or || src[i + 1] === "&") i++;
    } else if (c === "&" || c === ";" || c === "(" || c === ")") {
      endSeg(false);
      if (c === "&" && src[i + 1] === "&") i++;
    } else if (c === "\n") {
      endSeg(false);
      i = readHeredocs(src, i + 1, pending.splice(0)) - 1;
    } else {
      word += c;
      inWord = true;
    }
  }
  endSeg(false);
  return p;
}

/** Consume here-document bodies that start at `i`; returns the index after the last one. */
function readHeredocs(
  src: string,
  i: number,
  docs: { delim: string; strip: boolean; seg: Segment }[],
): number {
  for (const doc of docs) {
    while (i < src.length) {
      const end = src.indexOf("\n", i) < 0 ? src.length : src.indexOf("\n", i);
      const line = src.slice(i, end);
      i = end + 1;
      if ((doc.strip ? line.replace(/^\t+/, "") : line) === doc.delim) break;
      doc.seg.heredoc += line + "\n";
    }
  }
  return Math.min(i, src.length);
}

/** Index of the `)` that closes the `(` just before `i`, honouring quotes and nesting. */
function matchParen(src: string, i: number): number {
  let depth = 1;
  for (; i < src.length; i++) {
    const c = src[i];
    if (c === "\\") i++;
    else if (c === "'") i = src.indexOf("'", i + 1) < 0 ? src.length : src.indexOf("'", i + 1);
    else if (c === '"') {
      for (i++; i < src.length && src[i] !== '"'; i++) if (src[i] === "\\") i++;
    } else if (c === "(") depth++;
    else if (c === ")" && --depth === 0) return i;
  }
  return src.length;
}
