import assert from "node:assert/strict";
import { readAuditRows } from "../../kernel/audit.ts";
import { encodeBase64 } from "../../kernel/base64.ts";
import { OstkError, type OstkErrorCode } from "../../kernel/errors.ts";
import {
  ephemeralSigner,
  fingerprint,
  formatIdentityPub,
  loadOperatorKey,
  loadOrCreateOperatorKey,
  operatorKeyPath,
  parseIdentityPub,
  readIdentityPub,
  type Signer,
  verifierFor,
} from "../../kernel/identity.ts";
import { openSignedLog, projectSigner } from "../../kernel/project.ts";
import { initProject } from "../../kernel/project_init.ts";

const encoder = new TextEncoder();

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ostk_identity_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Catch the rejection of `promise` (or throw of `fn`) as an OstkError with `code`. */
async function ostkErrorOf(
  code: OstkErrorCode,
  run: () => unknown | Promise<unknown>,
): Promise<OstkError> {
  let caught: unknown;
  try {
    await run();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof OstkError, `expected an OstkError '${code}', got ${caught}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

function fakeEnv(values: Record<string, string>): Pick<typeof Deno.env, "get"> {
  return { get: (name: string) => values[name] };
}

Deno.test("identity: a new operator key is created 0600 in a 0700 directory", async () => {
  await withTemp(async (dir) => {
    const path = `${dir}/config/ostk/identity.key`;
    const key = await loadOrCreateOperatorKey(path);
    assert.equal(key.created, true);
    assert.equal(key.path, path);
    assert.match(key.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.equal(key.fingerprint, await fingerprint(key.signer.publicRaw));
    assert.equal(key.signer.publicRaw.length, 32);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${dir}/config/ostk`)).mode! & 0o777, 0o700);
    assert.match(await Deno.readTextFile(path), /^-----BEGIN PRIVATE KEY-----\n/);
  });
});

Deno.test("identity: a second load returns the same key, not a new one", async () => {
  await withTemp(async (dir) => {
    const path = `${dir}/ostk/identity.key`;
    const first = await loadOrCreateOperatorKey(path);
    const pem = await Deno.readTextFile(path);
    const second = await loadOrCreateOperatorKey(path);
    const third = await loadOperatorKey(path);
    assert.equal(second.created, false);
    assert.equal(third.created, false);
    assert.equal(second.fingerprint, first.fingerprint);
    assert.equal(third.fingerprint, first.fingerprint);
    assert.deepEqual(second.signer.publicRaw, first.signer.publicRaw);
    assert.equal(await Deno.readTextFile(path), pem, "the key file must not be rewritten");
  });
});

Deno.test("identity: loadOperatorKey on a missing file is not_found", async () => {
  await withTemp(async (dir) => {
    const err = await ostkErrorOf("not_found", () => loadOperatorKey(`${dir}/nope.key`));
    assert.equal(err.site.file, `${dir}/nope.key`);
  });
});

Deno.test("identity: operatorKeyPath prefers OSTK_IDENTITY, then XDG_CONFIG_HOME, then HOME", () => {
  const all = { OSTK_IDENTITY: "/k/explicit.key", XDG_CONFIG_HOME: "/xdg", HOME: "/home/u" };
  const cases: [Record<string, string>, string][] = [
    [all, "/k/explicit.key"],
    [{ XDG_CONFIG_HOME: "/xdg", HOME: "/home/u" }, "/xdg/ostk/identity.key"],
    [{ HOME: "/home/u" }, "/home/u/.config/ostk/identity.key"],
    // An empty variable counts as unset.
    [
      { OSTK_IDENTITY: "", XDG_CONFIG_HOME: "", HOME: "/home/u" },
      "/home/u/.config/ostk/identity.key",
    ],
  ];
  for (const [env, expected] of cases) {
    assert.equal(operatorKeyPath(fakeEnv(env)), expected, JSON.stringify(env));
  }
  assert.throws(
    () => operatorKeyPath(fakeEnv({})),
    (err) =>
      err instanceof OstkError && err.code === "not_found" && /OSTK_IDENTITY/.test(err.hint!),
  );
});

Deno.test("identity: a key file readable by others is refused with a chmod 600 hint", async () => {
  await withTemp(async (dir) => {
    const path = `${dir}/ostk/identity.key`;
    await loadOrCreateOperatorKey(path);
    const pem = await Deno.readTextFile(path);
    for (const mode of [0o644, 0o640, 0o604]) {
      await Deno.chmod(path, mode);
      const err = await ostkErrorOf("permission", () => loadOperatorKey(path));
      assert.equal(err.site.file, path);
      assert.match(err.message, new RegExp(mode.toString(8)));
      assert.ok(err.hint?.includes("chmod 600"), err.hint);
      assert.ok(err.toLine().includes(`chmod 600 ${path}`), err.toLine());
      // Creating must not paper over it by replacing the key either.
      await ostkErrorOf("permission", () => loadOrCreateOperatorKey(path));
      assert.equal(await Deno.readTextFile(path), pem);
    }
    await Deno.chmod(path, 0o600);
    assert.equal((await loadOperatorKey(path)).created, false);
  });
});

const CORRUPT_PEMS: { name: string; text: string; line: number }[] = [
  { name: "not PEM at all", text: "hello\n", line: 1 },
  { name: "an empty file", text: "", line: 1 },
  {
    name: "a PEM block cut off before its end line",
    text: "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n",
    line: 1,
  },
  {
    name: "a PEM body that is not base64",
    text: "-----BEGIN PRIVATE KEY-----\n!!!not*base64!!!\n-----END PRIVATE KEY-----\n",
    line: 2,
  },
  {
    name: "base64 that is not a PKCS#8 Ed25519 key",
    text: `-----BEGIN PRIVATE KEY-----\n${
      encodeBase64(encoder.encode("definitely not a key"))
    }\n-----END PRIVATE KEY-----\n`,
    line: 1,
  },
  {
    name: "a public key block",
    text: "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
    line: 1,
  },
];

for (const c of CORRUPT_PEMS) {
  Deno.test(`identity: a corrupt key file (${c.name}) is bad_input naming the file`, async () => {
    await withTemp(async (dir) => {
      const path = `${dir}/identity.key`;
      await Deno.writeTextFile(path, c.text, { mode: 0o600 });
      await Deno.chmod(path, 0o600);
      const err = await ostkErrorOf("bad_input", () => loadOperatorKey(path));
      assert.equal(err.site.file, path);
      assert.equal(err.site.line, c.line);
      // A corrupt key is not a missing key: it must not be replaced by a fresh one.
      await ostkErrorOf("bad_input", () => loadOrCreateOperatorKey(path));
      assert.equal(await Deno.readTextFile(path), c.text);
    });
  });
}

Deno.test("identity.pub: formatIdentityPub round-trips through parseIdentityPub", async () => {
  const signer = await ephemeralSigner();
  const text = formatIdentityPub(signer.publicRaw, "alice's  laptop\tmain");
  assert.equal(text, `ed25519 ${encodeBase64(signer.publicRaw)} alice's_laptop_main\n`);
  assert.deepEqual(parseIdentityPub(text, "identity.pub"), signer.publicRaw);
  // Comments and blank lines before the key line are skipped; CRLF endings are tolerated.
  const decorated = `# project key\n\n${text.replace("\n", "\r\n")}`;
  assert.deepEqual(parseIdentityPub(decorated, "identity.pub"), signer.publicRaw);
});

const BAD_PUBS: { name: string; text: (b64: string) => string; line: number; pattern: RegExp }[] = [
  { name: "empty", text: () => "", line: 1, pattern: /empty/ },
  { name: "only comments", text: () => "# nothing\n\n# here\n", line: 1, pattern: /empty/ },
  { name: "wrong kind", text: (b64) => `ssh-ed25519 ${b64} x\n`, line: 1, pattern: /ed25519/ },
  {
    name: "wrong kind after a comment",
    text: (b64) => `# key\n\nrsa ${b64}\n`,
    line: 3,
    pattern: /got 'rsa'/,
  },
  { name: "bad base64", text: () => "ed25519 not*base64! x\n", line: 1, pattern: /base64/ },
  {
    name: "too short",
    text: () => `ed25519 ${encodeBase64(new Uint8Array(31))} x\n`,
    line: 1,
    pattern: /32-byte.*31/,
  },
  {
    name: "too long",
    text: () => `ed25519 ${encodeBase64(new Uint8Array(33))} x\n`,
    line: 1,
    pattern: /32-byte.*33/,
  },
  { name: "no key", text: () => "ed25519\n", line: 1, pattern: /32-byte.*0 bytes/ },
];

Deno.test("identity.pub: corrupt files are integrity errors naming file and line", async () => {
  const b64 = encodeBase64((await ephemeralSigner()).publicRaw);
  for (const c of BAD_PUBS) {
    const err = await ostkErrorOf("integrity", () => parseIdentityPub(c.text(b64), "/p/id.pub"));
    assert.equal(err.site.file, "/p/id.pub", c.name);
    assert.equal(err.site.line, c.line, c.name);
    assert.match(err.message, c.pattern, c.name);
  }
});

Deno.test("identity.pub: readIdentityPub reads a file and names a missing one", async () => {
  await withTemp(async (dir) => {
    const signer = await ephemeralSigner();
    await Deno.writeTextFile(`${dir}/identity.pub`, formatIdentityPub(signer.publicRaw, "op"));
    assert.deepEqual(await readIdentityPub(`${dir}/identity.pub`), signer.publicRaw);
    const err = await ostkErrorOf("not_found", () => readIdentityPub(`${dir}/missing.pub`));
    assert.equal(err.site.file, `${dir}/missing.pub`);
    await Deno.writeTextFile(`${dir}/bad.pub`, "ed25519 AAAA\n");
    const bad = await ostkErrorOf("integrity", () => readIdentityPub(`${dir}/bad.pub`));
    assert.equal(bad.site.file, `${dir}/bad.pub`);
  });
});

async function assertSignVerify(signer: Signer, other: Signer): Promise<void> {
  const data = encoder.encode("the bytes a row hash would be");
  const sig = await signer.sign(data);
  assert.equal(sig.length, 64);
  const verifier = await verifierFor(signer.publicRaw);
  assert.equal(await verifier.verify(sig, data), true);
  assert.equal(await verifier.verify(sig, encoder.encode("other bytes")), false);
  const flipped = sig.slice();
  flipped[10] ^= 1;
  assert.equal(await verifier.verify(flipped, data), false);
  assert.equal(await verifier.verify(await other.sign(data), data), false);
  assert.equal(await (await verifierFor(other.publicRaw)).verify(sig, data), false);
}

Deno.test("identity: sign and verify round-trip, and only under the signing key", async () => {
  await withTemp(async (dir) => {
    const created = await loadOrCreateOperatorKey(`${dir}/ostk/identity.key`);
    const reloaded = await loadOperatorKey(`${dir}/ostk/identity.key`);
    const ephemeral = await ephemeralSigner();
    await assertSignVerify(ephemeral, created.signer);
    await assertSignVerify(created.signer, ephemeral);
    // A signature from the key as created verifies under the key as reloaded from disk.
    const data = encoder.encode("persisted");
    const verifier = await verifierFor(reloaded.signer.publicRaw);
    assert.equal(await verifier.verify(await created.signer.sign(data), data), true);
  });
});

Deno.test("identity: projectSigner refuses another operator's key and writes nothing", async () => {
  await withTemp(async (dir) => {
    const root = `${dir}/project`;
    await Deno.mkdir(root);
    const ownerPath = `${dir}/owner/identity.key`;
    const strangerPath = `${dir}/stranger/identity.key`;
    const owner = await loadOrCreateOperatorKey(ownerPath);
    const stranger = await loadOrCreateOperatorKey(strangerPath);
    const { paths } = await initProject(root, owner);
    const auditBefore = await Deno.readFile(paths.audit);
    const headBefore = await Deno.readFile(paths.head);

    const err = await ostkErrorOf("permission", () => projectSigner(paths, strangerPath));
    assert.equal(err.site.file, paths.identityPub);
    assert.ok(err.message.includes(stranger.fingerprint), err.message);
    assert.ok(err.message.includes(owner.fingerprint), err.message);

    // openSignedLog takes the key from the environment; it must refuse the same way.
    const saved = Deno.env.get("OSTK_IDENTITY");
    Deno.env.set("OSTK_IDENTITY", strangerPath);
    try {
      await ostkErrorOf("permission", () => openSignedLog(paths));
    } finally {
      if (saved === undefined) Deno.env.delete("OSTK_IDENTITY");
      else Deno.env.set("OSTK_IDENTITY", saved);
    }

    assert.deepEqual(await Deno.readFile(paths.audit), auditBefore);
    assert.deepEqual(await Deno.readFile(paths.head), headBefore);
    assert.deepEqual((await readAuditRows(paths.audit)).map((r) => r.event), ["os.init"]);

    const ok = await projectSigner(paths, ownerPath);
    assert.equal(ok.fingerprint, owner.fingerprint);
  });
});
