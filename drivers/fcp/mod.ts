/**
 * The FCP (File Context Protocol) framework: build an MCP driver for a domain `D` from a verb
 * registry, session hooks and a storage. The driver serves four tools: `D(ops)`, `D_query(q)`,
 * `D_session(action)` and `D_help()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseOp, tokenize } from "./mod.ts";
 * assert.equal(tokenize(`set name "two words"`)[2], "two words");
 * assert.equal(parseOp("fill A1:F1 value:0").positionals[0], "A1:F1");
 * ```
 *
 * @module
 */
export { FcpError, type FcpErrorCode } from "./errors.ts";
export {
  classifyToken,
  isRange,
  type ParsedOp,
  parseOp,
  parseSelector,
  scanTokens,
  type Selector,
  type Token,
  type TokenClass,
  tokenize,
} from "./grammar.ts";
export {
  defineVerb,
  type Dispatch,
  type FcpChange,
  type Prefix,
  type Verb,
  VerbRegistry,
  type VerbShape,
  type VerbSpec,
} from "./registry.ts";
export { EventLog, type FcpEvent, type Moved } from "./event_log.ts";
export { closest, editDistance, suggestionHint } from "./suggest.ts";
export {
  type FcpStorage,
  fileStorage,
  type KernelCall,
  kernelStorage,
  type MemoryStorage,
  memoryStorage,
} from "./storage.ts";
export { type FcpDriver, type FcpReply, FcpSession, type SessionHooks } from "./session.ts";
export { createFcpServer, type FcpServerOptions } from "./server.ts";
