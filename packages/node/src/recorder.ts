/**
 * The PolicyStrata trace recorder: one JSONL record per query, tool call, mutation, audit event
 * or agent session, in the published record shape (`policystrata.node.trace.v1`) that
 * `strata scan` reads as imported traces.
 */
import { randomUUID } from "node:crypto";
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";

import { Redactor, type RedactionOptions } from "./redact.js";
import { analyzePolicyStrataSql, type SqlAnalysis, type TenancyOptions } from "./sql.js";
import { POLICYSTRATA_NODE_SDK_VERSION, POLICYSTRATA_NODE_TRACE_VERSION } from "./version.js";

export type RecordType = "sql_trace" | "tool_execution" | "agent_session" | "mutation";
export type ToolKind = "read" | "write" | "memory" | "external";

export interface Actor {
  user_id?: string;
  household_id?: string;
  organization_id?: string;
  role?: string;
}

export interface ToolInfo {
  name: string;
  kind: ToolKind;
  scope?: string;
  approval_required?: boolean;
}

export interface QueryInfo {
  sql?: string;
  tables: string[];
  selected_columns: string[];
  tenant_predicates: string[];
  warnings: SqlAnalysis["warnings"];
  raw_sql_unparseable: boolean;
  query_index?: number;
}

/** One record, as written (one JSON object per line). */
export interface TraceRecord {
  id: string;
  record_type: RecordType;
  version: typeof POLICYSTRATA_NODE_TRACE_VERSION;
  node_sdk_version: string;
  source: string;
  timestamp: string;
  service: string;
  trace_id: string;
  environment?: string;
  session_id?: string;
  principal?: string;
  redacted_principal?: string;
  tenant_ids?: string[];
  release_allowed?: boolean;
  sql?: string;
  params?: unknown[];
  semantic_ir?: unknown;
  expected_policy?: Record<string, unknown>;
  actor?: Actor;
  tool?: ToolInfo;
  authorization?: Record<string, unknown>;
  query?: QueryInfo;
  result?: Record<string, unknown>;
  mutation?: Record<string, unknown>;
  audit?: Record<string, unknown>;
  argument_shape?: Record<string, unknown>;
  agent_session?: Record<string, unknown>;
  error?: { name: string; message?: string };
}

/** Where records go: a function, or an object with `write`. Gets the record and its JSON line. */
export type RecordWriter =
  | ((record: TraceRecord, line: string) => void)
  | { write(record: TraceRecord, line: string): void };

export interface RecorderOptions {
  /** The service name written into every record (required). */
  service: string;
  environment?: string;
  /** A JSONL file to append records to (its directory is created). */
  out?: string;
  /** The `source` of every record (default "policystrata.node"). */
  source?: string;
  /** The default principal (a policy principal id, e.g. "acme_analyst"). */
  principal?: string;
  /** The default tenant ids. */
  tenantIds?: string[];
  redaction?: RedactionOptions;
  tenancy?: TenancyOptions;
  /** Receives every record; default: `out`, else the in-memory `records` list. */
  writer?: RecordWriter;
  /** Record ids and trace ids (default: crypto.randomUUID). */
  uuid?: () => string;
  /** The clock (default: `new Date()`); timestamps are ISO 8601 UTC. */
  now?: () => Date;
}

/** What any record may say about the request it belongs to. */
export interface RecordContext {
  /** The record id (default: a new uuid). */
  id?: string;
  traceId?: string;
  sessionId?: string;
  principal?: string;
  tenantIds?: string[];
  actor?: Actor;
  releaseAllowed?: boolean;
  /** The semantic IR of the request: an object or IR text. */
  semanticIr?: unknown;
  expectedPolicy?: Record<string, unknown>;
  authorization?: Record<string, unknown>;
}

/** A Drizzle-style query: `.toSQL()` gives `{sql, params}`. */
export interface ToSql {
  toSQL(): { sql: string; params?: unknown[] };
}

export type SqlInput = string | { sql: string; params?: unknown[] } | ToSql;

export interface QueryInput extends RecordContext {
  sql: SqlInput;
  params?: unknown[];
  /** The query's result: only its shape and row count are recorded. */
  result?: unknown;
  error?: unknown;
  queryIndex?: number;
  tool?: ToolInfo;
}

export interface ToolOptions extends RecordContext {
  kind?: ToolKind;
  scope?: string;
  approvalRequired?: boolean;
}

export interface SessionInput extends RecordContext {
  sessionId: string;
  agentSession?: Record<string, unknown>;
}

export interface MutationInput extends RecordContext {
  operation: string;
  table?: string;
  rowCount?: number;
  sql?: SqlInput;
  params?: unknown[];
  error?: unknown;
}

export interface AuditInput extends RecordContext {
  action: string;
  decision?: string;
  reason?: string;
  details?: Record<string, unknown>;
}

function hasToSql(value: unknown): value is ToSql {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { toSQL?: unknown }).toSQL === "function"
  );
}

function sqlOf(input: SqlInput, params?: unknown[]): { sql: string; params?: unknown[] } {
  if (typeof input === "string") return params ? { sql: input, params } : { sql: input };
  const q = hasToSql(input) ? input.toSQL() : input;
  const p = params ?? q.params;
  return p ? { sql: q.sql, params: p } : { sql: q.sql };
}

function rowCount(result: unknown): number | undefined {
  if (Array.isArray(result)) return result.length;
  if (typeof result === "object" && result !== null) {
    const r = result as { rows?: unknown; rowCount?: unknown };
    if (Array.isArray(r.rows)) return r.rows.length;
    if (typeof r.rowCount === "number") return r.rowCount;
  }
  return undefined;
}

const WRITE_STATEMENTS = new Set(["insert", "update", "delete", "replace"]);

export class PolicyStrataRecorder {
  readonly options: RecorderOptions;
  /** Records kept in memory when neither `out` nor `writer` is given. */
  readonly records: TraceRecord[] = [];
  private readonly redactor: Redactor;
  private readonly tenancy: TenancyOptions;
  private readonly uuid: () => string;
  private readonly now: () => Date;
  private outReady = false;

  constructor(options: RecorderOptions) {
    if (!options || typeof options.service !== "string" || !options.service) {
      throw new TypeError("createPolicyStrataRecorder: `service` is required");
    }
    this.options = options;
    this.tenancy = options.tenancy ?? {};
    this.redactor = new Redactor(options.redaction, this.tenancy.tenantKeys ?? ["tenantId", "tenant_id"]);
    this.uuid = options.uuid ?? randomUUID;
    this.now = options.now ?? (() => new Date());
  }

  /** SQL hints (tables, selected columns, tenant predicates, warnings) with this recorder's tenancy. */
  analyzeSql(sql: string): SqlAnalysis {
    return analyzePolicyStrataSql(sql, this.tenancy);
  }

  /** Record one query. `sql` is text, `{sql, params}`, or a Drizzle query (`.toSQL()`). */
  recordQuery(input: QueryInput): TraceRecord {
    const { sql, params } = sqlOf(input.sql, input.params);
    const analysis = this.analyzeSql(sql);
    const write = analysis.statement !== undefined && WRITE_STATEMENTS.has(analysis.statement);
    const record = this.base(write ? "mutation" : "sql_trace", input);
    this.addSql(record, sql, params, analysis, input.queryIndex);
    if (write) {
      record.mutation = { operation: analysis.statement, ...(analysis.tables[0] ? { table: analysis.tables[0] } : {}) };
    }
    if (input.tool) record.tool = input.tool;
    if (input.result !== undefined) record.result = this.result(input.result);
    if (input.error !== undefined) record.error = this.error(input.error);
    return this.emit(record);
  }

  /** Record a Drizzle query from its `.toSQL()` (`{sql, params}`) without running it. */
  recordDrizzleQuery(query: ToSql, context: RecordContext & { queryIndex?: number } = {}): TraceRecord {
    return this.recordQuery({ ...context, sql: query });
  }

  /** Record a query object (Drizzle `.toSQL()` or `{sql, params}`) and hand it back unchanged:
   * `await recorder.captureQuery(db.select().from(accounts).where(...), {principal})`. */
  captureQuery<Q extends ToSql | { sql: string; params?: unknown[] }>(query: Q, context: RecordContext = {}): Q {
    this.recordQuery({ ...context, sql: query });
    return query;
  }

  /** A view of a Drizzle client whose query builders record themselves when executed
   * (awaited, `.then()`, or `.execute()`). `context` may be a function, read at execution. */
  wrapDrizzleClient<T extends object>(db: T, context: RecordContext | (() => RecordContext) = {}): T {
    const ctx = typeof context === "function" ? context : () => context;
    let index = 0;
    const record = (builder: ToSql) => {
      this.recordQuery({ ...ctx(), sql: builder, queryIndex: index++ });
    };
    return wrapChain(db, record);
  }

  /** Wrap a tool: each call writes a `tool_execution` record (argument shape, result shape,
   * error), then returns or throws what the tool did. */
  wrapTool<A extends unknown[], R>(
    name: string,
    fn: (...args: A) => R | Promise<R>,
    options: ToolOptions = {},
  ): (...args: A) => Promise<Awaited<R>> {
    const tool: ToolInfo = {
      name,
      kind: options.kind ?? "read",
      ...(options.scope !== undefined ? { scope: options.scope } : {}),
      ...(options.approvalRequired !== undefined ? { approval_required: options.approvalRequired } : {}),
    };
    return async (...args: A): Promise<Awaited<R>> => {
      const context: RecordContext = { ...options };
      if (!context.tenantIds) {
        const found = this.tenantIdsIn(args);
        if (found.length) context.tenantIds = found;
      }
      const record = this.base("tool_execution", context);
      record.tool = tool;
      record.argument_shape = this.redactor.shape(args.length === 1 ? args[0] : args);
      try {
        const result: Awaited<R> = await fn(...args);
        record.result = this.result(result);
        this.emit(record);
        return result;
      } catch (error) {
        record.result = { status: "error" };
        record.error = this.error(error);
        this.emit(record);
        throw error;
      }
    };
  }

  /** Record an agent session (`agent_session`): its id and what the agent says about it. */
  recordSession(input: SessionInput): TraceRecord {
    const record = this.base("agent_session", input);
    if (input.agentSession) record.agent_session = this.redactor.shape(input.agentSession);
    return this.emit(record);
  }

  /** Record a write (`mutation`): operation, table, row count, and its SQL when given. */
  recordMutation(input: MutationInput): TraceRecord {
    const record = this.base("mutation", input);
    let table = input.table;
    if (input.sql !== undefined) {
      const { sql, params } = sqlOf(input.sql, input.params);
      const analysis = this.analyzeSql(sql);
      this.addSql(record, sql, params, analysis);
      table = table ?? analysis.tables[0];
    }
    record.mutation = {
      operation: input.operation,
      ...(table ? { table } : {}),
      ...(input.rowCount !== undefined ? { row_count: input.rowCount } : {}),
    };
    if (input.error !== undefined) record.error = this.error(input.error);
    return this.emit(record);
  }

  /** Record an audit event (an authorization decision, an approval) of a session. */
  recordAudit(input: AuditInput): TraceRecord {
    const record = this.base("agent_session", input);
    record.audit = {
      action: input.action,
      ...(input.decision !== undefined ? { decision: input.decision } : {}),
      ...(input.reason !== undefined ? { reason: input.reason } : {}),
      ...(input.details ? { details: this.redactor.shape(input.details) } : {}),
    };
    return this.emit(record);
  }

  // ------------------------------------------------------------------------------------------

  private base(type: RecordType, ctx: RecordContext): TraceRecord {
    const o = this.options;
    const r = this.redactor;
    const record: TraceRecord = {
      id: ctx.id ?? this.uuid(),
      record_type: type,
      version: POLICYSTRATA_NODE_TRACE_VERSION,
      node_sdk_version: POLICYSTRATA_NODE_SDK_VERSION,
      source: o.source ?? "policystrata.node",
      timestamp: this.now().toISOString(),
      service: o.service,
      trace_id: ctx.traceId ?? this.uuid(),
    };
    if (o.environment !== undefined) record.environment = o.environment;
    if (ctx.sessionId !== undefined) record.session_id = r.id("session_id", ctx.sessionId);
    const principal = ctx.principal ?? o.principal;
    if (principal !== undefined) {
      if (r.isSafe("principal")) record.principal = principal;
      else record.redacted_principal = r.hash(principal);
    }
    const tenants = ctx.tenantIds ?? o.tenantIds;
    if (tenants !== undefined && r.isSafe("tenant_ids")) record.tenant_ids = [...tenants];
    if (ctx.releaseAllowed !== undefined) record.release_allowed = ctx.releaseAllowed;
    if (ctx.semanticIr !== undefined) record.semantic_ir = ctx.semanticIr;
    if (ctx.expectedPolicy !== undefined) record.expected_policy = ctx.expectedPolicy;
    if (ctx.actor) {
      const actor: Actor = {};
      for (const key of ["user_id", "household_id", "organization_id"] as const) {
        const value = ctx.actor[key];
        if (value !== undefined) actor[key] = r.id(`actor.${key}`, value);
      }
      if (ctx.actor.role !== undefined) actor.role = ctx.actor.role;
      record.actor = actor;
    }
    if (ctx.authorization !== undefined) record.authorization = ctx.authorization;
    return record;
  }

  private addSql(
    record: TraceRecord,
    sql: string,
    params: unknown[] | undefined,
    analysis: SqlAnalysis,
    queryIndex?: number,
  ): void {
    const r = this.redactor;
    if (r.includeSql) record.sql = sql;
    if (params !== undefined && r.includeParams) record.params = params;
    record.query = {
      ...(r.includeSql ? { sql } : {}),
      tables: analysis.tables,
      selected_columns: analysis.selected_columns,
      tenant_predicates: analysis.tenant_predicates,
      warnings: analysis.warnings,
      raw_sql_unparseable: analysis.raw_sql_unparseable,
      ...(queryIndex !== undefined ? { query_index: queryIndex } : {}),
    };
  }

  private result(value: unknown): Record<string, unknown> {
    const count = rowCount(value);
    return { status: "ok", ...(count !== undefined ? { row_count: count } : {}), shape: this.redactor.shape(value) };
  }

  private error(error: unknown): { name: string; message?: string } {
    const name = error instanceof Error ? error.name : typeof error;
    const message = error instanceof Error ? error.message : String(error);
    return this.redactor.includeErrorMessages ? { name, message } : { name };
  }

  private tenantIdsIn(args: unknown[]): string[] {
    const keys = this.tenancy.tenantKeys ?? ["tenantId", "tenant_id"];
    const out: string[] = [];
    for (const arg of args) {
      if (typeof arg !== "object" || arg === null) continue;
      for (const key of keys) {
        const value = (arg as Record<string, unknown>)[key];
        for (const v of Array.isArray(value) ? value : [value]) {
          if (typeof v === "string" && !out.includes(v)) out.push(v);
        }
      }
    }
    return out;
  }

  private emit(record: TraceRecord): TraceRecord {
    const line = JSON.stringify(record);
    const writer = this.options.writer;
    if (writer) {
      if (typeof writer === "function") writer(record, line);
      else writer.write(record, line);
    } else if (this.options.out) {
      if (!this.outReady) {
        mkdirSync(dirname(this.options.out), { recursive: true });
        this.outReady = true;
      }
      appendFileSync(this.options.out, line + "\n", "utf8");
    } else {
      this.records.push(record);
    }
    return record;
  }
}

/** Wrap an object so that query builders it returns (directly or down a method chain) record
 * themselves once when executed. */
function wrapChain<T extends object>(target: T, record: (builder: ToSql) => void): T {
  let recorded = false;
  return new Proxy(target, {
    get(obj, prop, receiver) {
      const value: unknown = Reflect.get(obj, prop, obj);
      if (typeof value !== "function") return value;
      const isBuilder = hasToSql(obj);
      if (isBuilder && (prop === "then" || prop === "execute")) {
        return (...args: unknown[]) => {
          if (!recorded) {
            recorded = true;
            record(obj as ToSql);
          }
          return (value as (...a: unknown[]) => unknown).apply(obj, args);
        };
      }
      if (prop === "toSQL" || prop === "constructor") return (value as () => unknown).bind(obj);
      return (...args: unknown[]) => {
        const out = (value as (...a: unknown[]) => unknown).apply(obj, args);
        if (out === obj) return receiver;
        if (typeof out === "object" && out !== null && !(out instanceof Promise)) {
          return wrapChain(out, record);
        }
        return out;
      };
    },
  });
}

/** Create a recorder: `createPolicyStrataRecorder({service: "support-api", out: "traces.jsonl"})`. */
export function createPolicyStrataRecorder(options: RecorderOptions): PolicyStrataRecorder {
  return new PolicyStrataRecorder(options);
}
