/**
 * Every kernel call the daemon makes, from a socket client or an in-process CPU, goes through
 * here: replayed calls are answered from the log instead of running twice, the caller's session
 * gets its heartbeat, a session's call passes its limits and the approval chain
 * (approval_gate.ts) first, and subscribers see the new rows. Calls from aliases that are not
 * sessions (the operator's own) skip the chain.
 */
import type { ContextBudget } from "../kernel/digest.ts";
import type { Caller, ToolResponse } from "../kernel/tools.ts";
import { limitRefusal } from "./approval_gate.ts";
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
  let as: Caller = caller;
  const settings = ctx.sessions.settingsOf(caller.alias);
  if (settings) {
    const hit = ctx.sessions.atLimit(caller.alias);
    if (hit) {
      await ctx.tail.poll();
      return limitRefusal(tool, hit);
    }
    const admission = await ctx.approvals.admit(tool, args, caller, settings);
    if (!admission.ok) return admission.response;
    as = admission.caller;
  }
  const response = await ctx.kernel.call(tool, args, as);
  ctx.sessions.afterCall(caller.alias, tool, response);
  await ctx.tail.poll();
  return response;
}
