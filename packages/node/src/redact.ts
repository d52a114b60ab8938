/**
 * Redaction: identifiers become `hmac-sha256:<24 hex>` (HMAC-SHA256 keyed with the salt, first
 * 24 hex digits), raw tenant ids are dropped, and tool arguments and results are reduced to
 * their shape (types, keys, lengths) unless a key is listed as safe.
 */
import { createHmac } from "node:crypto";

export interface RedactionOptions {
  /** Hash identifiers and drop raw tenant ids (default true). */
  hashIds?: boolean;
  /** The HMAC key (default: `$POLICYSTRATA_HASH_SALT`, else "policystrata"). Keep it secret. */
  hashSalt?: string;
  /** Record the SQL text (default true; `strata scan` needs it). */
  includeSql?: boolean;
  /** Record bound parameter values (default false). The scan binds them to `$1`, `$2`, ...:
   * without them a tenant filter written as `tenant_id = $1` cannot be verified. */
  includeParams?: boolean;
  /** Record error messages (default true; the error's name is always recorded). */
  includeErrorMessages?: boolean;
  /** Names kept verbatim even when hashing: record fields (`principal`, `tenant_ids`,
   * `session_id`, `actor.user_id`, ...) and argument/result keys, whose values are then
   * recorded in the shape. */
  safeFields?: string[];
  /** Argument/result keys holding identifiers: a safe one is recorded hashed when hashing
   * (default: `id` and keys ending in `_id` / `Id`; tenancy.tenantKeys are identifiers too). */
  idFields?: string[];
}

export const HASH_PREFIX = "hmac-sha256:";

export class Redactor {
  readonly hashIds: boolean;
  readonly includeSql: boolean;
  readonly includeParams: boolean;
  readonly includeErrorMessages: boolean;
  private readonly salt: string;
  private readonly safe: Set<string>;
  private readonly ids: Set<string> | undefined;
  private readonly tenantKeys: Set<string>;

  constructor(options: RedactionOptions = {}, tenantKeys: string[] = []) {
    this.hashIds = options.hashIds ?? true;
    this.includeSql = options.includeSql ?? true;
    this.includeParams = options.includeParams ?? false;
    this.includeErrorMessages = options.includeErrorMessages ?? true;
    this.salt = options.hashSalt ?? process.env.POLICYSTRATA_HASH_SALT ?? "policystrata";
    this.safe = new Set(options.safeFields ?? []);
    this.ids = options.idFields ? new Set(options.idFields) : undefined;
    this.tenantKeys = new Set(tenantKeys);
  }

  /** `hmac-sha256:` + the first 24 hex digits of HMAC-SHA256(salt, value). */
  hash(value: string): string {
    return HASH_PREFIX + createHmac("sha256", this.salt).update(value).digest("hex").slice(0, 24);
  }

  isSafe(field: string): boolean {
    return !this.hashIds || this.safe.has(field);
  }

  /** An identifier field of the record: raw when safe, hashed otherwise. */
  id(field: string, value: string): string {
    return this.isSafe(field) ? value : this.hash(value);
  }

  private isIdKey(key: string): boolean {
    if (this.ids) return this.ids.has(key);
    return key === "id" || key.endsWith("_id") || /[a-z]Id$/.test(key);
  }

  /** The shape of a value: its type, keys, lengths; the values of safe keys only. */
  shape(value: unknown, key?: string, depth = 0): Record<string, unknown> {
    if (value === null || value === undefined) return { type: "null" };
    if (Array.isArray(value)) {
      const out: Record<string, unknown> = { type: "array", length: value.length };
      if (value.length > 0 && depth < 4) out.items = this.shape(value[0], key, depth + 1);
      return out;
    }
    if (value instanceof Date) return { type: "date" };
    if (typeof value === "object") {
      const fields: Record<string, unknown> = {};
      if (depth < 4) {
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
          fields[k] = this.shape(v, k, depth + 1);
        }
      }
      return { type: "object", fields };
    }
    const type = typeof value;
    const out: Record<string, unknown> = { type };
    if (key === undefined || !this.safe.has(key)) return out;
    if (type === "string" || type === "number" || type === "boolean") {
      const isId = this.isIdKey(key) || this.tenantKeys.has(key);
      out.value = this.hashIds && isId ? this.hash(String(value)) : value;
    }
    return out;
  }
}
