import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

import {
  createPolicyStrataRecorder,
  PolicyStrataRecorder,
  POLICYSTRATA_NODE_SDK_VERSION,
  type RecorderOptions,
  type TraceRecord,
} from "../src/index.js";

const PACKAGE = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  version: string;
};

const TENANT_SQL =
  "select accounts.region, count(distinct support_tickets.id) as value from accounts " +
  "join support_tickets on support_tickets.account_id = accounts.id " +
  "where accounts.tenant_id = $1 group by accounts.region limit 100";

/** A recorder with a fixed clock and counting ids: its output is deterministic. */
function fixed(options: Partial<RecorderOptions> = {}): PolicyStrataRecorder {
  let n = 0;
  return createPolicyStrataRecorder({
    service: "support-api",
    uuid: () => `00000000-0000-4000-8000-${String(++n).padStart(12, "0")}`,
    now: () => new Date("2026-06-24T12:00:00Z"),
    ...options,
  });
}

function hmac(value: string, salt = "policystrata"): string {
  return "hmac-sha256:" + createHmac("sha256", salt).update(value).digest("hex").slice(0, 24);
}

/** A Drizzle-like query builder: chainable, thenable, `.toSQL()`, `.execute()`. */
class FakeBuilder {
  parts: string[];
  params: unknown[];
  executed = 0;
  constructor(parts: string[] = [], params: unknown[] = []) {
    this.parts = parts;
    this.params = params;
  }
  from(table: string): FakeBuilder {
    return new FakeBuilder([...this.parts, `from ${table}`], this.params);
  }
  where(column: string, value: unknown): FakeBuilder {
    const params = [...this.params, value];
    return new FakeBuilder([...this.parts, `where ${column} = $${params.length}`], params);
  }
  toSQL(): { sql: string; params: unknown[] } {
    return { sql: ["select *", ...this.parts].join(" "), params: this.params };
  }
  execute(): Promise<unknown[]> {
    this.executed++;
    return Promise.resolve([{ id: 1 }, { id: 2 }]);
  }
  then<T>(resolve: (rows: unknown[]) => T, reject?: (e: unknown) => T): Promise<T> {
    return this.execute().then(resolve, reject);
  }
}

class FakeDb {
  select(): FakeBuilder {
    return new FakeBuilder();
  }
}

describe("record shape", () => {
  it("writes the published fields", () => {
    const rec = fixed({ environment: "test" });
    const r = rec.recordQuery({ sql: TENANT_SQL, principal: "acme_analyst", sessionId: "s1" });
    assert.equal(r.record_type, "sql_trace");
    assert.equal(r.version, "policystrata.node.trace.v1");
    assert.equal(r.node_sdk_version, POLICYSTRATA_NODE_SDK_VERSION);
    assert.equal(r.source, "policystrata.node");
    assert.equal(r.service, "support-api");
    assert.equal(r.environment, "test");
    assert.equal(r.timestamp, "2026-06-24T12:00:00.000Z");
    assert.match(r.id, /^[A-Za-z0-9][A-Za-z0-9_.-]*$/); // a SafeId
    assert.ok(r.trace_id);
    assert.equal(r.sql, TENANT_SQL);
    assert.equal(r.query?.sql, TENANT_SQL);
    assert.deepEqual(r.query?.tables, ["accounts", "support_tickets"]);
    assert.deepEqual(r.query?.tenant_predicates, ["accounts.tenant_id"]);
    assert.equal(r.query?.raw_sql_unparseable, false);
  });

  it("carries the package's version", () => {
    assert.equal(POLICYSTRATA_NODE_SDK_VERSION, PACKAGE.version);
  });

  it("is deterministic with an injected clock and ids", () => {
    const lines = () => {
      const out: string[] = [];
      const rec = fixed({ writer: (_r, line) => out.push(line) });
      rec.recordQuery({ sql: TENANT_SQL, principal: "acme_analyst", tenantIds: ["acme"] });
      rec.recordSession({ sessionId: "s-1", agentSession: { model: "m", turns: 3 } });
      return out.join("\n");
    };
    assert.equal(lines(), lines());
  });

  it("requires a service", () => {
    assert.throws(() => createPolicyStrataRecorder({} as RecorderOptions), TypeError);
  });
});

describe("redaction", () => {
  it("hashes ids and drops raw tenant ids by default", () => {
    const rec = fixed();
    const r = rec.recordQuery({
      sql: TENANT_SQL,
      params: ["acme"],
      principal: "acme_analyst",
      tenantIds: ["acme"],
      sessionId: "session-7",
      actor: { user_id: "u-1", household_id: "h-1", organization_id: "o-1", role: "analyst" },
    });
    assert.equal(r.principal, undefined);
    assert.equal(r.redacted_principal, hmac("acme_analyst"));
    assert.match(r.redacted_principal ?? "", /^hmac-sha256:[0-9a-f]{24}$/);
    assert.equal(r.tenant_ids, undefined);
    assert.equal(r.params, undefined);
    assert.equal(r.session_id, hmac("session-7"));
    assert.deepEqual(r.actor, {
      user_id: hmac("u-1"),
      household_id: hmac("h-1"),
      organization_id: hmac("o-1"),
      role: "analyst",
    });
    assert.ok(!JSON.stringify(r).includes('"acme"'));
  });

  it("keeps safe fields verbatim and uses the salt", () => {
    const rec = fixed({
      redaction: { safeFields: ["principal", "tenant_ids"], includeParams: true, hashSalt: "s3cret" },
    });
    const r = rec.recordQuery({ sql: TENANT_SQL, params: ["acme"], principal: "acme_analyst", tenantIds: ["acme"], sessionId: "x" });
    assert.equal(r.principal, "acme_analyst");
    assert.deepEqual(r.tenant_ids, ["acme"]);
    assert.deepEqual(r.params, ["acme"]);
    assert.equal(r.session_id, hmac("x", "s3cret"));
  });

  it("records everything raw with hashIds: false", () => {
    const rec = fixed({ redaction: { hashIds: false }, principal: "acme_analyst", tenantIds: ["acme"] });
    const r = rec.recordQuery({ sql: "select 1", actor: { user_id: "u-1" } });
    assert.equal(r.principal, "acme_analyst");
    assert.deepEqual(r.tenant_ids, ["acme"]);
    assert.deepEqual(r.actor, { user_id: "u-1" });
  });

  it("can leave the SQL text out", () => {
    const r = fixed({ redaction: { includeSql: false } }).recordQuery({ sql: TENANT_SQL });
    assert.equal(r.sql, undefined);
    assert.equal(r.query?.sql, undefined);
    assert.deepEqual(r.query?.tables, ["accounts", "support_tickets"]);
  });

  it("never writes a raw identifier it was asked to hash (random inputs)", () => {
    let seed = 1729;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const alphabet = ["a", "Z", "0", "_", "-", " ", '"', "\\", "\n", "é", "😀", "'", ":", "{"];
    const word = () => Array.from({ length: 1 + Math.floor(rand() * 12) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join("");
    const lines: string[] = [];
    const rec = fixed({ writer: (_r, line) => lines.push(line) });
    for (let i = 0; i < 300; i++) {
      const principal = `p${word()}`;
      const tenant = `tenant-${i}-${word()}`;
      const user = `u${word()}`;
      rec.recordQuery({ sql: `select ${word()}`, principal, tenantIds: [tenant], actor: { user_id: user } });
      const line = lines[lines.length - 1] ?? "";
      assert.ok(!line.includes("\n"));
      const r = JSON.parse(line) as TraceRecord;
      assert.equal(r.redacted_principal, hmac(principal));
      assert.equal(r.principal, undefined);
      assert.equal(r.tenant_ids, undefined);
      assert.equal(r.actor?.user_id, hmac(user));
      assert.ok(!line.includes(JSON.stringify(tenant).slice(1, -1)));
    }
  });
});

describe("queries", () => {
  it("captureQuery records a Drizzle .toSQL() and hands the query back", () => {
    const rec = fixed({ redaction: { includeParams: true } });
    const q = { toSQL: () => ({ sql: TENANT_SQL, params: ["acme"] }) };
    assert.equal(rec.captureQuery(q, { principal: "acme_analyst" }), q);
    const r = rec.records[0];
    assert.equal(r?.sql, TENANT_SQL);
    assert.deepEqual(r?.params, ["acme"]);
  });

  it("recordDrizzleQuery and {sql, params} objects", () => {
    const rec = fixed();
    rec.recordDrizzleQuery({ toSQL: () => ({ sql: "select * from accounts", params: [] }) }, { queryIndex: 3 });
    rec.recordQuery({ sql: { sql: "select * from invoices", params: [] } });
    assert.equal(rec.records[0]?.query?.query_index, 3);
    assert.deepEqual(rec.records[1]?.query?.tables, ["invoices"]);
  });

  it("records writes as mutations", () => {
    const r = fixed().recordQuery({ sql: "delete from accounts where id = $1", params: [1] });
    assert.equal(r.record_type, "mutation");
    assert.deepEqual(r.mutation, { operation: "delete", table: "accounts" });
  });

  it("keeps the result's shape and row count, not its values", () => {
    const r = fixed().recordQuery({ sql: "select 1", result: { rows: [{ email: "a@b.c" }], rowCount: 1 } });
    assert.equal(r.result?.row_count, 1);
    assert.ok(!JSON.stringify(r).includes("a@b.c"));
  });

  it("wrapDrizzleClient records a builder when it is awaited or executed, once", async () => {
    const rec = fixed({ redaction: { includeParams: true, safeFields: ["principal"] } });
    const db = rec.wrapDrizzleClient(new FakeDb(), () => ({ principal: "acme_analyst" }));
    const rows = await db.select().from("accounts").where("accounts.tenant_id", "acme");
    assert.equal((rows as unknown[]).length, 2);
    const q = db.select().from("invoices");
    q.toSQL(); // building is not running
    assert.equal(rec.records.length, 1);
    await q.execute();
    assert.equal(rec.records.length, 2);
    const [first, second] = rec.records;
    assert.equal(first?.sql, "select * from accounts where accounts.tenant_id = $1");
    assert.deepEqual(first?.params, ["acme"]);
    assert.equal(first?.principal, "acme_analyst");
    assert.equal(first?.query?.query_index, 0);
    assert.equal(second?.query?.query_index, 1);
  });
});

describe("tools, sessions, mutations, audit", () => {
  it("wrapTool records the argument shape and the result", async () => {
    const rec = fixed({ redaction: { safeFields: ["metric", "tenant_ids"] } });
    const tool = rec.wrapTool("metrics.query", async (args: { metric: string; tenantId: string; email: string }) => [args.metric], {
      kind: "read",
      scope: "analytics",
      approvalRequired: false,
    });
    assert.deepEqual(await tool({ metric: "ticket_count", tenantId: "acme", email: "x@y.z" }), ["ticket_count"]);
    const r = rec.records[0];
    assert.equal(r?.record_type, "tool_execution");
    assert.deepEqual(r?.tool, { name: "metrics.query", kind: "read", scope: "analytics", approval_required: false });
    assert.deepEqual(r?.argument_shape, {
      type: "object",
      fields: { metric: { type: "string", value: "ticket_count" }, tenantId: { type: "string" }, email: { type: "string" } },
    });
    assert.deepEqual(r?.tenant_ids, ["acme"]); // from the tenantId argument (tenant_ids is safe)
    assert.deepEqual(r?.result, { status: "ok", row_count: 1, shape: { type: "array", length: 1, items: { type: "string" } } });
    assert.ok(!JSON.stringify(r).includes("x@y.z"));
  });

  it("wrapTool records and rethrows errors", async () => {
    const rec = fixed();
    const tool = rec.wrapTool("boom", () => {
      throw new RangeError("too many rows");
    }, { kind: "external" });
    await assert.rejects(tool(), RangeError);
    assert.deepEqual(rec.records[0]?.error, { name: "RangeError", message: "too many rows" });
    assert.deepEqual(rec.records[0]?.result, { status: "error" });
  });

  it("recordSession, recordMutation and recordAudit", () => {
    const rec = fixed();
    const s = rec.recordSession({ sessionId: "s-1", agentSession: { model: "gpt", turns: 4 } });
    assert.equal(s.record_type, "agent_session");
    assert.equal(s.session_id, hmac("s-1"));
    assert.deepEqual(s.agent_session, { type: "object", fields: { model: { type: "string" }, turns: { type: "number" } } });
    const m = rec.recordMutation({ operation: "update", sql: "update accounts set name = $1 where id = $2", rowCount: 1 });
    assert.equal(m.record_type, "mutation");
    assert.deepEqual(m.mutation, { operation: "update", table: "accounts", row_count: 1 });
    const a = rec.recordAudit({ action: "approve_export", decision: "deny", reason: "no approval" });
    assert.equal(a.record_type, "agent_session");
    assert.deepEqual(a.audit, { action: "approve_export", decision: "deny", reason: "no approval" });
  });
});

describe("writers", () => {
  it("appends JSONL to `out`, creating its directory", () => {
    const dir = mkdtempSync(join(tmpdir(), "policystrata-node-"));
    const out = join(dir, "nested", "traces.jsonl");
    const rec = fixed({ out });
    rec.recordQuery({ sql: "select 1" });
    rec.recordSession({ sessionId: "s" });
    const lines = readFileSync(out, "utf8").split("\n");
    assert.equal(lines.length, 3);
    assert.equal(lines[2], "");
    assert.deepEqual(lines.slice(0, 2).map((l) => (JSON.parse(l) as TraceRecord).record_type), ["sql_trace", "agent_session"]);
    assert.equal(rec.records.length, 0);
  });

  it("hands records to a writer object", () => {
    const seen: string[] = [];
    const rec = fixed({ writer: { write: (r) => seen.push(r.record_type) } });
    rec.recordAudit({ action: "a" });
    assert.deepEqual(seen, ["agent_session"]);
  });
});
