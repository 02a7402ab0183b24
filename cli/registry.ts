/** Every command by name; `os` is a group whose sub-commands are named `os <sub>`. */
import {
  agentfileLintCommand,
  agentfileNewCommand,
  agentfileShowCommand,
  agentfileValidateCommand,
} from "./agentfile.ts";
import { aliasCommand } from "./alias.ts";
import { approveCommand } from "./approve.ts";
import { attachCommand } from "./attach.ts";
import { listenCommand, statusCommand, stopCommand } from "./listen.ts";
import { killCommand, lineageCommand, psCommand, pstreeCommand, spawnCommand } from "./sessions.ts";
import { auditCommand } from "./audit.ts";
import { bootCommand } from "./boot.ts";
import { callCommand } from "./call.ts";
import { completionsCommand } from "./completions.ts";
import type { Command } from "./command.ts";
import { demoCommand } from "./demo.ts";
import { doctorCommand } from "./doctor.ts";
import {
  driverCallCommand,
  driverListCommand,
  driverServeCommand,
  driverToolsCommand,
} from "./driver.ts";
import { initCommand } from "./init.ts";
import { inspectCommand } from "./inspect.ts";
import { learnCommand } from "./learn.ts";
import { logCommand } from "./log.ts";
import { mcpCommand } from "./mcp.ts";
import { nudgeCommand } from "./nudge.ts";
import { recoverCommand } from "./recover.ts";
import { runAgentCommand } from "./run_agent.ts";
import { sandboxCheckCommand, sandboxExecCommand, sandboxHelperCommand } from "./sandbox.ts";
import { topCommand } from "./top.ts";

export const COMMANDS: readonly Command[] = [
  initCommand,
  bootCommand,
  auditCommand,
  recoverCommand,
  logCommand,
  aliasCommand,
  agentfileNewCommand,
  agentfileShowCommand,
  agentfileLintCommand,
  agentfileValidateCommand,
  callCommand,
  listenCommand,
  stopCommand,
  statusCommand,
  psCommand,
  pstreeCommand,
  spawnCommand,
  runAgentCommand,
  approveCommand,
  killCommand,
  nudgeCommand,
  attachCommand,
  inspectCommand,
  topCommand,
  lineageCommand,
  demoCommand,
  doctorCommand,
  mcpCommand,
  driverListCommand,
  driverToolsCommand,
  driverCallCommand,
  driverServeCommand,
  sandboxExecCommand,
  sandboxCheckCommand,
  learnCommand,
  completionsCommand(() => COMMANDS),
  sandboxHelperCommand,
];

/** Command groups: the first word that needs a second one. */
export const GROUPS = new Set(
  COMMANDS.filter((c) => c.name.includes(" ")).map((c) => c.name.split(" ")[0]),
);
