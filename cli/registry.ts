/** Every command by name; `os` is a group whose sub-commands are named `os <sub>`. */
import { aliasCommand } from "./alias.ts";
import { attachCommand } from "./attach.ts";
import { listenCommand, statusCommand, stopCommand } from "./listen.ts";
import { killCommand, lineageCommand, psCommand, pstreeCommand, spawnCommand } from "./sessions.ts";
import { auditCommand } from "./audit.ts";
import { bootCommand } from "./boot.ts";
import { callCommand } from "./call.ts";
import type { Command } from "./command.ts";
import { demoCommand } from "./demo.ts";
import { initCommand } from "./init.ts";
import { logCommand } from "./log.ts";
import { recoverCommand } from "./recover.ts";

export const COMMANDS: readonly Command[] = [
  initCommand,
  bootCommand,
  auditCommand,
  recoverCommand,
  logCommand,
  aliasCommand,
  callCommand,
  listenCommand,
  stopCommand,
  statusCommand,
  psCommand,
  pstreeCommand,
  spawnCommand,
  killCommand,
  attachCommand,
  lineageCommand,
  demoCommand,
];

/** Command groups: the first word that needs a second one. */
export const GROUPS = new Set(
  COMMANDS.filter((c) => c.name.includes(" ")).map((c) => c.name.split(" ")[0]),
);
