/**
 * The terminal approval prompt of `ostk run` (cli/approve.ts) with a scripted keyboard and a
 * recording client: one key answers, other keys ask again, and the terminal goes back to
 * cooked mode on every way out (answer, end of input, Ctrl-C, close while asking). The same
 * prompt in a real pseudo-terminal is tested in tests/actors/run_agent_test.ts.
 */
import assert from "node:assert/strict";
import type { DaemonClient } from "../../actors/client.ts";
import { type KeyInput, promptText, terminalApprover } from "../../cli/approve.ts";
import { waitFor } from "../helpers/daemon_fixture.ts";

/** A keyboard that hands out the keys it is given, one `read` each; `end()` is Ctrl-D's EOF. */
class FakeKeys implements KeyInput {
  modes: string[] = [];
  reads = 0;
  #queue: (string | null)[] = [];
  #waiter?: (keys: string | null) => void;
  raw() {
    this.modes.push("raw");
  }
  cooked() {
    this.modes.push("cooked");
  }
  read(): Promise<string | null> {
    this.reads++;
    const next = this.#queue.shift();
    if (next !== undefined) return Promise.resolve(next);
    return new Promise((resolve) => this.#waiter = resolve);
  }
  type(keys: string | null) {
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w(keys);
    } else this.#queue.push(keys);
  }
}

/** A client whose pending questions are `pending`; answers are recorded with the tty mode. */
function fakeClient(pending: Set<string>, keys?: FakeKeys) {
  const answers: { request_id: string; answer: string }[] = [];
  const modesAtAnswer: (string | undefined)[] = [];
  const client = {
    request(method: string, params: Record<string, unknown>) {
      if (method === "session/approvals") {
        return Promise.resolve({ pending: [...pending].map((request_id) => ({ request_id })) });
      }
      if (method === "session/approve") {
        answers.push({ request_id: String(params.request_id), answer: String(params.answer) });
        modesAtAnswer.push(keys?.modes.at(-1));
        pending.delete(String(params.request_id));
        return Promise.resolve({});
      }
      return Promise.reject(new Error(`unexpected ${method}`));
    },
  } as unknown as DaemonClient;
  return { client, answers, modesAtAnswer };
}

const question = (id: string, cls = "FileWrite") => ({
  alias: "w-1",
  request_id: id,
  class: cls,
  summary: `file:write ${id}.txt [${cls}]: ask the operator`,
});

Deno.test("prompt: one key answers; other keys ask again; raw only while asking", async () => {
  const keys = new FakeKeys();
  const { client, answers, modesAtAnswer } = fakeClient(new Set(["r1", "r2"]), keys);
  let interrupted = 0;
  const approver = terminalApprover(client, { onInterrupt: () => interrupted++, input: keys });
  try {
    approver.ask(question("r1"));
    approver.ask(question("r2"));
    keys.type("x");
    keys.type("Y");
    await waitFor("the first answer", () => answers.length === 1);
    keys.type("n");
    await waitFor("the second answer", () => answers.length === 2);
    assert.deepEqual(answers, [
      { request_id: "r1", answer: "y" },
      { request_id: "r2", answer: "n" },
    ]);
    assert.deepEqual(keys.modes, ["raw", "cooked", "raw", "cooked"]);
    assert.deepEqual(modesAtAnswer, ["cooked", "cooked"], "answers go out with the tty cooked");
    assert.equal(interrupted, 0);
  } finally {
    approver.close();
  }
});

Deno.test("prompt: a question already answered elsewhere is not asked", async () => {
  const keys = new FakeKeys();
  const pending = new Set(["r2"]); // r1 was covered by an earlier "a", or answered elsewhere
  const { client, answers } = fakeClient(pending);
  const approver = terminalApprover(client, { onInterrupt: () => {}, input: keys });
  try {
    approver.ask(question("r1"));
    approver.ask(question("r2"));
    keys.type("a");
    await waitFor("the answer", () => answers.length === 1);
    assert.deepEqual(answers, [{ request_id: "r2", answer: "a" }]);
    assert.equal(keys.reads, 1, "one key read, for the one question still waiting");
  } finally {
    approver.close();
  }
});

Deno.test("prompt: Ctrl-C interrupts, end of input stops, close while asking restores", async () => {
  const ends: [string, string | null][] = [
    ["Ctrl-C", "\x03"],
    ["end of input", null],
    ["close", "close"],
  ];
  for (const [what, end] of ends) {
    const keys = new FakeKeys();
    const { client, answers } = fakeClient(new Set(["r1"]));
    let interrupted = 0;
    const approver = terminalApprover(client, { onInterrupt: () => interrupted++, input: keys });
    approver.ask(question("r1"));
    await waitFor(`${what}: the prompt`, () => keys.modes.length === 1);
    if (end === "close") approver.close();
    else keys.type(end);
    await waitFor(`${what}: cooked again`, () => keys.modes.at(-1) === "cooked");
    approver.close();
    assert.deepEqual(keys.modes, ["raw", "cooked"], what);
    assert.deepEqual(answers, [], `${what}: nothing was answered`);
    assert.equal(interrupted, what === "Ctrl-C" ? 1 : 0, what);
  }
});

Deno.test("prompt: the text says what 'a' covers, and that dangerous commands still ask", () => {
  const plain = promptText(question("r1", "ShellExec"));
  assert.match(plain, /a = yes to this and every ShellExec call of this session, the waiting/);
  const danger = promptText({ ...question("r2", "ShellWrite"), dangerous: true });
  assert.match(danger, /a = yes, and yes to every ordinary ShellWrite call .*still ask/);
  assert.ok(plain.endsWith("approve? [y/n/a] "));
});
