import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { analyzePolicyStrataSql, createPolicyStrataRecorder } from "../src/index.js";

describe("analyzePolicyStrataSql", () => {
  it("resolves aliases in tenant predicates and the select list", () => {
    const a = analyzePolicyStrataSql(
      "select a.region, count(distinct t.id) as value from accounts a join support_tickets t on t.account_id = a.id where a.tenant_id in ('acme') group by a.region",
    );
    assert.deepEqual(a.tables, ["accounts", "support_tickets"]);
    assert.deepEqual(a.selected_columns, ["accounts.region", "value"]);
    assert.deepEqual(a.tenant_predicates, ["accounts.tenant_id"]);
    assert.equal(a.raw_sql_unparseable, false);
  });

  it("warns about a tenant table read without a tenant predicate", () => {
    const a = analyzePolicyStrataSql(
      "select count(*) from accounts join support_tickets on support_tickets.account_id = accounts.id where accounts.tenant_id = $1",
      { tenantTables: ["accounts", "support_tickets"] },
    );
    assert.deepEqual(a.warnings.map((w) => [w.code, w.table]), [["missing_tenant_predicate", "support_tickets"]]);
  });

  it("knows pinned tenant columns and leaves CTE names out of the tables", () => {
    const a = analyzePolicyStrataSql(
      "with mine as (select * from events where events.project_id = 'p1') select count(*) from mine",
      { tenantColumns: ["events.project_id"], tenantTables: ["events"] },
    );
    assert.deepEqual(a.tables, ["events"]);
    assert.deepEqual(a.tenant_predicates, ["events.project_id"]);
    assert.deepEqual(a.warnings, []);
  });

  it("reports what it cannot parse instead of guessing", () => {
    const a = analyzePolicyStrataSql("select from where");
    assert.equal(a.raw_sql_unparseable, true);
    assert.deepEqual(a.tables, []);
    assert.equal(a.warnings[0]?.code, "unparseable_sql");
  });

  it("never throws, whatever the input", () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const tokens = ["select", "from", "where", "accounts", "a", "tenant_id", "=", "$1", "'x'", "(", ")", ",", "join", "on", ";", "--", "/*", "*/", "in", "or", "union", "*"];
    for (let i = 0; i < 500; i++) {
      const sql = Array.from({ length: 1 + Math.floor(rand() * 14) }, () => tokens[Math.floor(rand() * tokens.length)]).join(" ");
      const a = analyzePolicyStrataSql(sql, { tenantTables: ["accounts"] });
      assert.equal(typeof a.raw_sql_unparseable, "boolean");
      assert.ok(Array.isArray(a.tables) && Array.isArray(a.warnings));
    }
  });

  it("is the recorder's analyzeSql with its tenancy", () => {
    const rec = createPolicyStrataRecorder({ service: "s", tenancy: { tenantTables: ["accounts"] } });
    assert.equal(rec.analyzeSql("select * from accounts").warnings[0]?.code, "missing_tenant_predicate");
  });
});
