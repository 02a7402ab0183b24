/**
 * Every kernel call the daemon makes, from a socket client or an in-process CPU, goes through
 * here: replayed calls are answered from the log instead of running twice, the caller's session
 * gets its heartbeat, and subscribers see the new rows.
 */
import type { ContextBudget } from "../kernel/digest.ts";
import type { ToolResponse } from "../kernel/tools.ts";
import type { DaemonContext } from "./daemon.ts";

export interface GateCaller {
  alias: string;
  callId?: string;
  budget?: ContextBudget;
}

/** Run one tool call for `caller`. */
export async function callKernel(
  ctx: DaemonContext,
  tool: string,
  args: unknown,
  caller: GateCaller,
): Promise<ToolResponse> {
  ctx.sessions.heartbeat(caller.alias);
  if (caller.callId && (await ctx.fold.refresh()).callIds.has(caller.callId)) {
    // A turn replayed after a crash: this call already reached the log, so running it again
    // would repeat a write. Answer that it was done.
    return {
      ok: true,
      tool: tool as never,
      result: { replayed: true, call_id: caller.callId },
      digest: "",
    };
  }
  const response = await ctx.kernel.call(tool, args, caller);
  ctx.sessions.afterCall(caller.alias, tool, response);
  await ctx.tail.poll();
  return response;
}
