/**
 * Language models as session CPUs. `ModelCpu` (cpu_model.ts) is the agent loop; `providerFor`
 * (provider.ts) picks Anthropic, OpenAI, an OpenAI-compatible server or Ollama by the spec's
 * prefix. On disk a model session adds `.ostk/drain/<alias>.messages.jsonl` (its conversation,
 * sidecar.ts) and, when it stops short, `.ostk/handoff/<alias>.md` (handoff.ts).
 */
export { ModelCpu, type ModelCpuOptions, type ModelCpuSpec } from "./cpu_model.ts";
export { ProviderError, type ProviderErrorCode } from "./errors.ts";
export type { RetryInfo, RetryPolicy } from "./_http.ts";
export { handoffPath } from "./handoff.ts";
export { exceededLimit, type ModelLimits, nextPressure, type Pressure } from "./lifecycle.ts";
export { costUsd, type ModelInfo, modelInfo } from "./prices.ts";
export {
  type ChatRequest,
  type Message,
  type ModelProvider,
  type ModelSpec,
  parseModelSpec,
  providerFor,
  type ProviderOptions,
  type StreamEvent,
  type ToolDef,
} from "./provider.ts";
export { maskSecrets, secretRefs } from "./secrets.ts";
export { sidecarPath } from "./sidecar.ts";
export { kernelToolDefs } from "./tool_defs.ts";
export { collectTurn } from "./turn.ts";
