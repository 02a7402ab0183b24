/**
 * The operator's Ed25519 identity: one private key per user, outside every project, and its
 * public half in each project's `.ostk/identity.pub`.
 */
import { decodeBase64, encodeBase64 } from "./base64.ts";
import { OstkError } from "./errors.ts";

/** Something that can sign: the operator key, or a throwaway key in a self-test. */
export interface Signer {
  readonly publicRaw: Uint8Array<ArrayBuffer>;
  sign(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>>;
}

/** Something that can check a signature against one public key. */
export interface Verifier {
  readonly publicRaw: Uint8Array<ArrayBuffer>;
  verify(signature: Uint8Array<ArrayBuffer>, data: Uint8Array<ArrayBuffer>): Promise<boolean>;
}

/** The loaded operator key. */
export interface OperatorKey {
  signer: Signer;
  path: string;
  fingerprint: string;
  /** True when this call created the key. */
  created: boolean;
}

const ALGORITHM = { name: "Ed25519" } as const;
const PEM_LABEL = "PRIVATE KEY";

/**
 * Where the operator's private key lives: `$OSTK_IDENTITY`, else
 * `$XDG_CONFIG_HOME/ostk/identity.key`, else `~/.config/ostk/identity.key`.
 */
export function operatorKeyPath(env: Pick<typeof Deno.env, "get"> = Deno.env): string {
  const explicit = env.get("OSTK_IDENTITY");
  if (explicit) return explicit;
  const xdg = env.get("XDG_CONFIG_HOME");
  if (xdg) return `${xdg}/ostk/identity.key`;
  const home = env.get("HOME");
  if (!home) {
    throw new OstkError(
      "not_found",
      "cannot place the operator key: HOME, XDG_CONFIG_HOME and OSTK_IDENTITY are all unset",
      {},
      "set OSTK_IDENTITY to a key file path",
    );
  }
  return `${home}/.config/ostk/identity.key`;
}

/** `SHA256:<base64>` of the raw public key, the form ssh users know. */
export async function fingerprint(publicRaw: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", publicRaw));
  return `SHA256:${encodeBase64(digest).replace(/=+$/, "")}`;
}

/** A fresh in-memory signer; used by self-tests and benchmarks, never for the real log. */
export async function ephemeralSigner(): Promise<Signer> {
  const pair = (await crypto.subtle.generateKey(ALGORITHM, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  const publicRaw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return keySigner(pair.privateKey, publicRaw);
}

/** A verifier for a raw 32-byte Ed25519 public key. */
export async function verifierFor(publicRaw: Uint8Array<ArrayBuffer>): Promise<Verifier> {
  const key = await crypto.subtle.importKey("raw", publicRaw, ALGORITHM, true, ["verify"]);
  return {
    publicRaw,
    verify: (signature, data) => crypto.subtle.verify(ALGORITHM, key, signature, data),
  };
}

function keySigner(privateKey: CryptoKey, publicRaw: Uint8Array<ArrayBuffer>): Signer {
  return {
    publicRaw,
    sign: async (data) => new Uint8Array(await crypto.subtle.sign(ALGORITHM, privateKey, data)),
  };
}

/**
 * Load the operator key from `path`, creating it (and its 0700 directory) if absent. A key whose
 * file is readable by group or others is refused for signing: someone else may hold a copy.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadOrCreateOperatorKey } from "./identity.ts";
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/ostk/identity.key`;
 * const key = await loadOrCreateOperatorKey(path);
 * assert.ok(key.created);
 * assert.match(key.fingerprint, /^SHA256:/);
 * assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
 * const again = await loadOrCreateOperatorKey(path);
 * assert.equal(again.created, false);
 * assert.equal(again.fingerprint, key.fingerprint);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadOrCreateOperatorKey(
  path: string = operatorKeyPath(),
): Promise<OperatorKey> {
  try {
    return await loadOperatorKey(path);
  } catch (err) {
    if (!(err instanceof OstkError && err.code === "not_found")) throw err;
  }
  const dir = path.slice(0, Math.max(path.lastIndexOf("/"), 0)) || ".";
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const pair = (await crypto.subtle.generateKey(ALGORITHM, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const pem = toPem(pkcs8);
  // Written whole to a private temp name, then hard-linked into place: link() fails if the key
  // exists, so two racing creators never overwrite each other and no reader sees a half key.
  const tmp = `${path}.${Deno.pid}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(tmp, pem, { createNew: true, mode: 0o600 });
  try {
    await Deno.chmod(tmp, 0o600);
    await Deno.link(tmp, path);
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return loadOperatorKey(path);
    throw err;
  } finally {
    await Deno.remove(tmp);
  }
  const loaded = await loadOperatorKey(path);
  return { ...loaded, created: true };
}

/** Load an existing operator key; `not_found` when there is none. */
export async function loadOperatorKey(path: string = operatorKeyPath()): Promise<OperatorKey> {
  let text: string;
  let mode: number | null;
  try {
    mode = (await Deno.stat(path)).mode;
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new OstkError("not_found", "no operator key", { file: path }, "run 'ostk init'");
    }
    throw new OstkError("io", `cannot read operator key: ${(err as Error).message}`, {
      file: path,
    });
  }
  if (mode !== null && (mode & 0o077) !== 0) {
    throw new OstkError(
      "permission",
      `private key is readable by others (mode ${(mode & 0o777).toString(8)}); refusing to sign`,
      { file: path },
      `run 'chmod 600 ${path}'`,
    );
  }
  const pkcs8 = fromPem(text, path);
  let privateKey: CryptoKey;
  try {
    privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, ALGORITHM, true, ["sign"]);
  } catch {
    throw new OstkError("bad_input", "not an Ed25519 PKCS#8 private key", { file: path, line: 1 });
  }
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  const publicRaw = decodeBase64Url(jwk.x ?? "");
  return {
    signer: keySigner(privateKey, publicRaw),
    path,
    fingerprint: await fingerprint(publicRaw),
    created: false,
  };
}

function toPem(der: Uint8Array<ArrayBuffer>): string {
  const b64 = encodeBase64(der);
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${PEM_LABEL}-----\n${lines.join("\n")}\n-----END ${PEM_LABEL}-----\n`;
}

function fromPem(text: string, file: string): Uint8Array<ArrayBuffer> {
  const match = text.match(
    new RegExp(`-----BEGIN ${PEM_LABEL}-----([\\s\\S]*?)-----END ${PEM_LABEL}-----`),
  );
  if (!match) {
    throw new OstkError("bad_input", `expected a PEM '${PEM_LABEL}' block`, { file, line: 1 });
  }
  try {
    return decodeBase64(match[1].replace(/\s+/g, ""));
  } catch {
    throw new OstkError("bad_input", "PEM body is not base64", { file, line: 2 });
  }
}

function decodeBase64Url(text: string): Uint8Array<ArrayBuffer> {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  return decodeBase64(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
}

/** The one line of `identity.pub`: `ed25519 <base64 raw key> <comment>`. */
export function formatIdentityPub(publicRaw: Uint8Array<ArrayBuffer>, comment: string): string {
  return `ed25519 ${encodeBase64(publicRaw)} ${comment.replace(/\s+/g, "_")}\n`;
}

/** Parse `identity.pub`; a corrupt file is an integrity error naming file and line. */
export function parseIdentityPub(text: string, file: string): Uint8Array<ArrayBuffer> {
  const lines = text.split("\n");
  const index = lines.findIndex((line) => line.trim() !== "" && !line.trimStart().startsWith("#"));
  if (index < 0) throw new OstkError("integrity", "identity.pub is empty", { file, line: 1 });
  const [kind, b64] = lines[index].trim().split(/\s+/);
  const site = { file, line: index + 1 };
  if (kind !== "ed25519") {
    throw new OstkError("integrity", `expected 'ed25519 <key>', got '${kind}'`, site);
  }
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = decodeBase64(b64 ?? "");
  } catch {
    throw new OstkError("integrity", "public key is not base64", site);
  }
  if (raw.length !== 32) {
    throw new OstkError("integrity", `expected a 32-byte key, got ${raw.length} bytes`, site);
  }
  return raw;
}

/** Read and parse a project's `identity.pub`. */
export async function readIdentityPub(file: string): Promise<Uint8Array<ArrayBuffer>> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new OstkError("not_found", "identity.pub is missing", { file }, "run 'ostk init'");
    }
    throw new OstkError("io", `cannot read identity.pub: ${(err as Error).message}`, { file });
  }
  return parseIdentityPub(text, file);
}

/** True when two raw keys are the same bytes. */
export function sameKey(a: Uint8Array<ArrayBuffer>, b: Uint8Array<ArrayBuffer>): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
