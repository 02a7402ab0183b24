/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Entry of the script CPU's Worker (started by `cpu_worker.ts` with read access to one
 * transcript and nothing else). It parses the transcript and runs the turn loop; each kernel
 * call and each finished turn is a request to the host, answered by id (`_worker_port.ts`).
 */
import { parseTranscript, runTurns } from "./cpu_script.ts";
import { errorText, permissionStates, serveWorker, type WorkerPort } from "./_worker_port.ts";

async function run(
  msg: { script: string; alias: string; start_turn: number },
  port: WorkerPort,
): Promise<void> {
  try {
    const turns = parseTranscript(await Deno.readTextFile(msg.script), msg.script);
    port.post({ type: "ready", turns: turns.length });
    const reason = await runTurns(turns, {
      alias: msg.alias,
      startTurn: msg.start_turn,
      signal: port.signal,
      call: (tool, args, callId) =>
        port.request((id) => ({ type: "call", id, tool, args, call_id: callId })),
      onTurn: (turn) => port.request((id) => ({ type: "turn", id, turn })),
    });
    port.post({ type: "done", reason });
  } catch (err) {
    port.fail(err);
  }
}

async function probe(writePath: string, port: WorkerPort): Promise<void> {
  const permissions = await permissionStates();
  let writeError: string | null = null;
  try {
    await Deno.writeTextFile(writePath, "a script worker must not be able to write this\n");
  } catch (err) {
    writeError = errorText(err);
  }
  let runError: string | null = null;
  try {
    await new Deno.Command("true").output();
  } catch (err) {
    runError = errorText(err);
  }
  port.post({ type: "probe_result", permissions, write_error: writeError, run_error: runError });
}

let started = false;
serveWorker(self, (msg, port) => {
  if (msg.type === "start" && !started) {
    started = true;
    run(msg, port);
  } else if (msg.type === "probe") {
    probe(msg.write_path, port);
  }
  // start_model / probe_fetch belong to the model worker (actors/llm/_model_worker_entry.ts).
});
