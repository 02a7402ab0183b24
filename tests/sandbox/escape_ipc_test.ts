/**
 * Escapes that leave no file behind: signalling or inspecting a process outside the sandbox,
 * and TCP. As in escape_test.ts, only an effect the test sees from outside says "escaped" (a
 * signal the victim reports, its secret in the sandboxed program's output, bytes that reach a
 * listener the test owns, a port the test can connect to), and "held" needs that effect absent
 * plus a positive control (the same program with a grant, or unsandboxed) that has it.
 */
import assert from "node:assert/strict";
import { landlockSupport, spawnSandboxed, withGrants } from "../../sandbox/mod.ts";
import {
  bare,
  exists,
  type Run,
  sandboxed,
  withWorld,
  type World,
} from "../helpers/sandbox_world.ts";

const support = landlockSupport();
const ignore = !support.supported;
const abi = support.supported ? support.abi : 0;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Marker first (proves the program started), then the attempt, then its exit status. */
function wrap(script: string): string {
  return `echo started > "$P/src/attempt_started"\n(\n${script}\n)\necho "attempt rc=$?"`;
}

/** The attempt ran in the sandbox, failed, and said why in the words of a refused syscall. */
async function assertRefused(w: World, r: Run, words: RegExp): Promise<void> {
  assert.ok(await exists(`${w.proj}/src/attempt_started`), `never started:\n${r.stderr}`);
  const status = r.stdout.match(/^attempt rc=(\d+)$/m);
  assert.ok(status, `the attempt did not finish:\n${r.stderr}`);
  assert.notEqual(status[1], "0", "the attempt reported success");
  assert.match(r.stderr, words);
}

/** Lines of a stream, one at a time, until it ends. */
async function* linesOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
    }
  }
  if (buffered) yield buffered;
}

/**
 * A process outside every sandbox that prints the name of each signal it receives; SIGWINCH
 * makes it print END and exit. Standard signals pending together are handled lowest number
 * first (and bash runs pending traps in signal order), so a SIGTERM that reached it before
 * the test's SIGWINCH is always printed before END: the report decides, not a wait.
 */
async function withVictim(
  fn: (victim: { pid: number; report: () => Promise<string[]> }) => Promise<void>,
): Promise<void> {
  const script = `trap 'echo TERM' TERM
trap 'echo USR1' USR1
trap 'kill $s 2>/dev/null; echo END; exit 0' WINCH
sleep 600 & s=$!
echo ready
while kill -0 $s 2>/dev/null; do wait $s; done`;
  const child = new Deno.Command("bash", {
    args: ["-c", script],
    env: { SECRET: "s3cret-of-the-victim" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = linesOf(child.stdout);
  let ended = false;
  const report = async () => {
    child.kill("SIGWINCH");
    const seen: string[] = [];
    for await (const line of lines) seen.push(line);
    ended = true;
    await child.status;
    return seen;
  };
  try {
    const first = await lines.next();
    assert.equal(first.value, "ready", "the victim did not start");
    await fn({ pid: child.pid, report });
  } finally {
    if (!ended) {
      child.kill("SIGKILL");
      await child.status;
    }
  }
}

Deno.test({
  name: "sandbox escape: a signal to a process outside the domain",
  ignore: ignore || abi < 6,
}, async () => {
  await withWorld(async (w) => {
    await withVictim(async (victim) => {
      const control = await bare(w, wrap(`kill -TERM ${victim.pid}`));
      assert.match(control.stdout, /^attempt rc=0$/m, control.stderr);
      assert.deepEqual(await victim.report(), ["TERM", "END"], "control: the signal arrived");
    });
    await withVictim(async (victim) => {
      const r = await sandboxed(w, wrap(`kill -TERM ${victim.pid}`));
      assert.deepEqual(await victim.report(), ["END"], "ESCAPED: SIGTERM reached the victim");
      await assertRefused(w, r, /Operation not permitted/);
    });
  });
});

Deno.test({
  name: "sandbox escape: reading another process's environment",
  ignore: ignore || abi < 6,
}, async () => {
  await withWorld(async (w) => {
    await withVictim(async (victim) => {
      const read = wrap(`cat /proc/${victim.pid}/environ`);
      const control = await bare(w, read);
      assert.match(control.stdout, /s3cret-of-the-victim/, "control: the secret is readable");
      // /proc itself is readable inside: the sandboxed program sees its own environment.
      const own = await sandboxed(w, "cat /proc/self/environ");
      assert.equal(own.code, 0, own.stderr);
      assert.match(own.stdout, /OUT=/);
      const r = await sandboxed(w, read);
      assert.doesNotMatch(r.stdout, /s3cret/, "ESCAPED: the victim's secret was read");
      await assertRefused(w, r, /Permission denied/);
      await victim.report();
    });
  });
});

/**
 * A listener the test owns. `received()` makes one connection of its own (the sentinel) and
 * returns what every earlier connection sent: the kernel queues connections for accept() in
 * the order they were made, so a connection the sandboxed program completed before the test's
 * is always accepted first.
 */
async function withListener(
  fn: (port: number, received: () => Promise<string[]>) => Promise<void>,
): Promise<void> {
  const hostname = "127.0.0.1";
  const listener = Deno.listen({ hostname, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const sentinel = `sentinel-${crypto.randomUUID()}`;
  const received = async () => {
    const mine = await Deno.connect({ hostname, port });
    await mine.write(encoder.encode(sentinel));
    mine.close();
    const payloads: string[] = [];
    for (;;) {
      const conn = await listener.accept();
      let text = "";
      for await (const chunk of conn.readable) text += decoder.decode(chunk, { stream: true });
      if (text === sentinel) return payloads;
      payloads.push(text);
    }
  };
  try {
    await fn(port, received);
  } finally {
    listener.close();
  }
}

Deno.test(
  { name: "sandbox escape: a TCP connection to a port not granted", ignore: ignore || abi < 4 },
  async () => {
    await withWorld(async (w) => {
      await withListener(async (port, received) => {
        const send = wrap(`bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port} && echo hello >&3'`);
        const control = await sandboxed(w, send, withGrants(w.policy, { connect: [port] }));
        assert.match(control.stdout, /^attempt rc=0$/m, control.stderr);
        assert.deepEqual(await received(), ["hello\n"], "control: the granted port got the bytes");

        const r = await sandboxed(w, send);
        assert.deepEqual(await received(), [], "ESCAPED: bytes reached the listener");
        await assertRefused(w, r, /Permission denied/);
      });
    });
  },
);

/** A port nothing listens on now. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function canConnect(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.ConnectionRefused) return false;
    throw e;
  }
}

const PY = "/usr/bin/python3";

/**
 * The sandboxed program tries to bind and listen on `port`, reports the errno on stdout, and
 * then stays alive until its stdin closes; meanwhile the test tries to connect to that port.
 */
async function tryListen(w: World, port: number, policy = w.policy) {
  const program = `import os, socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", ${port}))
    s.listen(1)
    print("listening", flush=True)
except OSError as e:
    print("errno", e.errno, flush=True)
    print(e, file=sys.stderr, flush=True)
sys.stdin.read()`;
  const child = spawnSandboxed(policy, [PY, "-c", program], {
    cwd: w.proj,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const stderr = new Response(child.stderr).text();
  const lines = linesOf(child.stdout);
  try {
    const said = (await lines.next()).value ?? "(nothing)";
    const reachable = await canConnect(port);
    return { said, reachable, stderr };
  } finally {
    await child.stdin.close();
    for await (const _ of lines) { /* drain until the program exits */ }
    await child.status;
  }
}

Deno.test({
  name: "sandbox escape: listening on a TCP port not granted",
  ignore: ignore || abi < 4 || !(await exists(PY)),
}, async () => {
  await withWorld(async (w) => {
    const port = freePort();
    const control = await tryListen(w, port, withGrants(w.policy, { bind: [port] }));
    assert.equal(control.said, "listening", await control.stderr);
    assert.equal(control.reachable, true, "control: the test reached the granted listener");

    const held = await tryListen(w, port);
    assert.equal(held.reachable, false, "ESCAPED: the test reached a listener on the port");
    assert.equal(held.said, "errno 13", "the bind was refused with EACCES");
    assert.match(await held.stderr, /Permission denied/);
  });
});
