-- support_saas: a B2B customer-support SaaS (PostgreSQL 15).
--
-- Tenancy model: every tenant-owned table carries its own tenant_id column (denormalised from
-- its parent, as most multi-tenant SaaS schemas do so that row-level security is a plain column
-- comparison and every index can lead with tenant_id). Foreign keys tie children to parents.
-- accounts.legacy_tenant_id is the ownership field of the pre-2025 schema: it is kept for old
-- integrations, it is NOT the tenant boundary, and for some accounts it differs from tenant_id.
--
-- Row-level security: each tenant-owned table is ENABLEd and FORCEd (so even the table owner is
-- subject to it) and has one policy comparing its tenant column with the session setting
-- app.tenant_id, which the application sets per transaction (SET LOCAL app.tenant_id = 'acme').
-- current_setting('app.tenant_id', true) returns NULL when unset, so an unscoped session sees
-- no rows (fail closed).
--
-- The application connects as strata_app, which only has SELECT.

CREATE TABLE tenants (
    id text PRIMARY KEY,
    name text NOT NULL,
    created_on date NOT NULL
);

CREATE TABLE accounts (
    id text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id),
    legacy_tenant_id text,
    name text NOT NULL,
    region text NOT NULL,
    customer_email text NOT NULL,
    created_on date NOT NULL
);

CREATE TABLE subscriptions (
    id text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id),
    account_id text NOT NULL REFERENCES accounts (id),
    plan text NOT NULL,
    seats integer NOT NULL,
    started_on date NOT NULL
);

CREATE TABLE invoices (
    id text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id),
    account_id text NOT NULL REFERENCES accounts (id),
    invoice_date date NOT NULL,
    gross_amount_cents bigint NOT NULL,
    net_amount_cents bigint NOT NULL
);

CREATE TABLE agents (
    id text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id),
    name text NOT NULL,
    email text NOT NULL
);

CREATE TABLE support_tickets (
    id text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id),
    account_id text NOT NULL REFERENCES accounts (id),
    agent_id text REFERENCES agents (id),
    opened_at date NOT NULL,
    severity text NOT NULL,
    escalated boolean NOT NULL DEFAULT false,
    resolution_hours numeric(8, 2)
);

CREATE TABLE ticket_events (
    id text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id),
    ticket_id text NOT NULL REFERENCES support_tickets (id),
    event_at timestamptz NOT NULL,
    kind text NOT NULL
);

-- Row-level security: ENABLE + FORCE on every tenant-owned table.
-- tenants is scoped by its own id (a tenant may read its own tenant row only).
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenants_isolation ON tenants
    USING (id = current_setting('app.tenant_id', true));

ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY accounts_tenant_isolation ON accounts
    USING (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY subscriptions_tenant_isolation ON subscriptions
    USING (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoices FORCE ROW LEVEL SECURITY;
CREATE POLICY invoices_tenant_isolation ON invoices
    USING (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE agents ENABLE ROW LEVEL SECURITY;
ALTER TABLE agents FORCE ROW LEVEL SECURITY;
CREATE POLICY agents_tenant_isolation ON agents
    USING (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE support_tickets ENABLE ROW LEVEL SECURITY;
ALTER TABLE support_tickets FORCE ROW LEVEL SECURITY;
CREATE POLICY support_tickets_tenant_isolation ON support_tickets
    USING (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE ticket_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE ticket_events FORCE ROW LEVEL SECURITY;
CREATE POLICY ticket_events_tenant_isolation ON ticket_events
    USING (tenant_id = current_setting('app.tenant_id', true));

-- The application role: read-only. (CREATE ROLE is cluster-wide, so the database module creates
-- strata_app before loading this file.)
GRANT SELECT ON tenants TO strata_app;
GRANT SELECT ON accounts TO strata_app;
GRANT SELECT ON subscriptions TO strata_app;
GRANT SELECT ON invoices TO strata_app;
GRANT SELECT ON agents TO strata_app;
GRANT SELECT ON support_tickets TO strata_app;
GRANT SELECT ON ticket_events TO strata_app;
