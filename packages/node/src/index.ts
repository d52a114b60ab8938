/**
 * @policystrata/node: record what a Node/TypeScript data-agent stack did (queries, tool calls,
 * mutations, audit events, agent sessions) as JSONL that `strata scan` reads.
 *
 * ```ts
 * import { createPolicyStrataRecorder } from "@policystrata/node";
 * const recorder = createPolicyStrataRecorder({ service: "support-api", out: "traces.jsonl" });
 * await recorder.captureQuery(db.select().from(accounts).where(eq(accounts.tenantId, tenant)), {
 *   principal: "acme_analyst",
 * });
 * ```
 */
export {
  createPolicyStrataRecorder,
  PolicyStrataRecorder,
  type Actor,
  type AuditInput,
  type MutationInput,
  type QueryInfo,
  type QueryInput,
  type RecordContext,
  type RecorderOptions,
  type RecordType,
  type RecordWriter,
  type SessionInput,
  type SqlInput,
  type ToolInfo,
  type ToolKind,
  type ToolOptions,
  type ToSql,
  type TraceRecord,
} from "./recorder.js";
export { HASH_PREFIX, type RedactionOptions } from "./redact.js";
export {
  analyzePolicyStrataSql,
  type SqlAnalysis,
  type SqlWarning,
  type TenancyOptions,
} from "./sql.js";
export { POLICYSTRATA_NODE_SDK_VERSION, POLICYSTRATA_NODE_TRACE_VERSION } from "./version.js";
