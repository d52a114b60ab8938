/**
 * SQL hints for a trace record: the tables read or written, the selected columns, the tenant
 * predicates seen, and warnings. Parsed with node-sql-parser (PostgreSQL grammar), never with
 * string matching. These are hints for a human reading the trace: `strata scan` parses the SQL
 * again (with sqlglot) and decides every finding itself.
 */
import sqlParser from "node-sql-parser/build/postgresql.js";

const { Parser } = sqlParser;
const parser = new Parser();
const PARSE_OPTIONS = { database: "PostgresQL" };

export interface TenancyOptions {
  /** Columns that hold the tenant (default: `["tenant_id"]`). `table.column` pins a table. */
  tenantColumns?: string[];
  /** Argument and context keys that hold tenant ids (their values are never recorded raw). */
  tenantKeys?: string[];
  /** Tables every query must filter by tenant: reading one without a tenant predicate warns. */
  tenantTables?: string[];
}

export interface SqlWarning {
  code: string;
  message: string;
  table?: string;
}

export interface SqlAnalysis {
  /** Tables the statement reads or writes (CTE names excluded), in order of appearance. */
  tables: string[];
  /** The select list: `table.column` for columns, the alias (or expression kind) otherwise. */
  selected_columns: string[];
  /** Tenant predicates seen anywhere in the statement, as `table.column` (aliases resolved). */
  tenant_predicates: string[];
  warnings: SqlWarning[];
  /** True when the parser could not read the statement (nothing else is then known). */
  raw_sql_unparseable: boolean;
  /** The statement kind: select, insert, update, delete, ... (absent when unparseable). */
  statement?: string;
}

type Node = Record<string, unknown>;

function isNode(value: unknown): value is Node {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Every object in an AST, depth first. */
function* walk(value: unknown): Generator<Node> {
  if (Array.isArray(value)) {
    for (const item of value) yield* walk(item);
  } else if (isNode(value)) {
    yield value;
    for (const child of Object.values(value)) yield* walk(child);
  }
}

function columnName(ref: Node): string | undefined {
  const column = ref.column;
  if (typeof column === "string") return column;
  if (isNode(column) && isNode(column.expr) && typeof column.expr.value === "string") {
    return column.expr.value;
  }
  return undefined;
}

function tableName(entry: string): string | undefined {
  // tableList entries look like "select::schema::table" (schema "null" when absent).
  const [, schema, table] = entry.split("::");
  if (!table) return undefined;
  return schema && schema !== "null" ? `${schema}.${table}` : table;
}

/** alias (or bare table name) -> table, from every FROM / JOIN / UPDATE target in the AST. */
function aliases(ast: unknown): Map<string, string> {
  const out = new Map<string, string>();
  for (const node of walk(ast)) {
    if (typeof node.table === "string" && !("column" in node)) {
      const table = node.db ? `${String(node.db)}.${node.table}` : node.table;
      out.set(node.table, table);
      if (typeof node.as === "string" && node.as) out.set(node.as, table);
    }
  }
  return out;
}

function cteNames(ast: unknown): Set<string> {
  const names = new Set<string>();
  for (const node of walk(ast)) {
    if (!Array.isArray(node.with)) continue;
    for (const cte of node.with) {
      if (!isNode(cte)) continue;
      const name = cte.name;
      if (typeof name === "string") names.add(name);
      else if (isNode(name) && typeof name.value === "string") names.add(name.value);
    }
  }
  return names;
}

function tenantColumnMatcher(columns: string[]): (table: string | undefined, column: string) => boolean {
  const bare = new Set(columns.filter((c) => !c.includes(".")));
  const pinned = new Set(columns.filter((c) => c.includes(".")));
  return (table, column) => bare.has(column) || (table !== undefined && pinned.has(`${table}.${column}`));
}

/**
 * Analyze one SQL statement. Never throws: a statement the parser cannot read gives
 * `raw_sql_unparseable: true` and an `unparseable_sql` warning.
 *
 * @example
 * analyzePolicyStrataSql("select a.region from accounts a where a.tenant_id = $1")
 * // { tables: ["accounts"], selected_columns: ["accounts.region"],
 * //   tenant_predicates: ["accounts.tenant_id"], warnings: [], raw_sql_unparseable: false, ... }
 */
export function analyzePolicyStrataSql(sql: string, tenancy: TenancyOptions = {}): SqlAnalysis {
  const tenantColumns = tenancy.tenantColumns ?? ["tenant_id"];
  let parsed: { tableList: string[]; ast: unknown };
  try {
    parsed = parser.parse(sql, PARSE_OPTIONS) as { tableList: string[]; ast: unknown };
  } catch (error) {
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    return {
      tables: [],
      selected_columns: [],
      tenant_predicates: [],
      warnings: [{ code: "unparseable_sql", message: `the SQL parser could not read it: ${reason}` }],
      raw_sql_unparseable: true,
    };
  }
  const ast = parsed.ast;
  const statements = (Array.isArray(ast) ? ast : [ast]).filter(isNode);
  const ctes = cteNames(ast);
  const tables: string[] = [];
  for (const entry of parsed.tableList) {
    const table = tableName(entry);
    if (table && !ctes.has(table) && !tables.includes(table)) tables.push(table);
  }
  const alias = aliases(ast);
  const resolve = (name: unknown): string | undefined =>
    typeof name === "string" && name ? (alias.get(name) ?? name) : undefined;

  const selected: string[] = [];
  const first = statements[0];
  if (first && Array.isArray(first.columns)) {
    for (const col of first.columns) {
      if (!isNode(col)) continue;
      const expr = col.expr;
      if (isNode(expr) && expr.type === "column_ref") {
        const name = columnName(expr) ?? "*";
        const table = resolve(expr.table) ?? (tables.length === 1 ? tables[0] : undefined);
        selected.push(table ? `${table}.${name}` : name);
      } else if (typeof col.as === "string" && col.as) {
        selected.push(col.as);
      } else if (isNode(expr) && typeof expr.type === "string") {
        selected.push(expr.type);
      }
    }
  }

  const isTenant = tenantColumnMatcher(tenantColumns);
  const predicates: string[] = [];
  for (const node of walk(ast)) {
    if (node.type !== "binary_expr" || !["=", "IN"].includes(String(node.operator))) continue;
    for (const side of [node.left, node.right]) {
      if (!isNode(side) || side.type !== "column_ref") continue;
      const column = columnName(side);
      if (!column) continue;
      const table = resolve(side.table) ?? (tables.length === 1 ? tables[0] : undefined);
      if (!isTenant(table, column)) continue;
      const name = table ? `${table}.${column}` : column;
      if (!predicates.includes(name)) predicates.push(name);
    }
  }

  const warnings: SqlWarning[] = [];
  const scoped = new Set(predicates.map((p) => (p.includes(".") ? p.slice(0, p.lastIndexOf(".")) : "")));
  for (const table of tables) {
    if ((tenancy.tenantTables ?? []).includes(table) && !scoped.has(table)) {
      warnings.push({
        code: "missing_tenant_predicate",
        message: `reads ${table} without a predicate on its tenant column (${tenantColumns.join(", ")})`,
        table,
      });
    }
  }
  const statement = first && typeof first.type === "string" ? first.type : undefined;
  return {
    tables,
    selected_columns: selected,
    tenant_predicates: predicates,
    warnings,
    raw_sql_unparseable: false,
    ...(statement ? { statement } : {}),
  };
}
