-- support_saas: a B2B customer-support SaaS (PostgreSQL 15), in the published shape.
--
-- Tenancy model: only the tables directly below the tenant carry a tenant column (accounts and
-- agents have tenant_id). Every other table reaches its tenant through foreign keys:
--   subscriptions.account_id -> accounts, invoices.subscription_id -> subscriptions,
--   support_tickets.account_id -> accounts, ticket_events.ticket_id -> support_tickets.
-- A query is confined to a tenant when the tenant predicate reaches each table it reads along
-- that chain (a join to the scoped parent, or EXISTS / IN on it).
-- accounts.legacy_tenant_id is the ownership field of the pre-2025 schema: kept for old
-- integrations, NOT the tenant boundary, and for some accounts it differs from tenant_id.
--
-- Row-level security: every table is ENABLEd and FORCEd (so even the owner is subject to it).
-- accounts and agents compare their tenant column with the session setting app.tenant_id, which
-- the application sets per transaction (set_config('app.tenant_id', 'acme', true)); the other
-- tables are scoped through their parents by EXISTS. current_setting('app.tenant_id', true) is
-- NULL when unset, so an unscoped session sees no rows (fail closed).
--
-- Beyond the published columns, support_tickets has opened_at (the ticket metrics' time column).
-- The application connects as strata_app, which only has SELECT.

CREATE TABLE tenants (
    id text PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE accounts (
    id serial PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id),
    legacy_tenant_id text,
    name text NOT NULL,
    region text NOT NULL,
    customer_email text NOT NULL
);

CREATE TABLE subscriptions (
    id serial PRIMARY KEY,
    account_id integer NOT NULL REFERENCES accounts (id),
    plan text NOT NULL,
    status text NOT NULL
);

CREATE TABLE invoices (
    id serial PRIMARY KEY,
    subscription_id integer NOT NULL REFERENCES subscriptions (id),
    invoice_date date NOT NULL,
    gross_amount_cents integer NOT NULL,
    net_amount_cents integer NOT NULL
);

CREATE TABLE agents (
    id serial PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id),
    email text NOT NULL,
    name text NOT NULL
);

CREATE TABLE support_tickets (
    id serial PRIMARY KEY,
    account_id integer NOT NULL REFERENCES accounts (id),
    assigned_agent_id integer REFERENCES agents (id),
    severity text NOT NULL,
    escalated boolean NOT NULL DEFAULT false,
    resolution_hours integer NOT NULL,
    opened_at date NOT NULL
);

CREATE TABLE ticket_events (
    id serial PRIMARY KEY,
    ticket_id integer NOT NULL REFERENCES support_tickets (id),
    event_type text NOT NULL,
    created_at timestamptz NOT NULL
);

-- Row-level security: ENABLE + FORCE on every table.
-- tenants is scoped by its own id (a tenant may read its own tenant row only).
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_tenants ON tenants
    USING (id = current_setting('app.tenant_id', true));

ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_accounts ON accounts
    USING (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE agents ENABLE ROW LEVEL SECURITY;
ALTER TABLE agents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_agents ON agents
    USING (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_subscriptions ON subscriptions
    USING (EXISTS (
        SELECT 1 FROM accounts a
        WHERE a.id = subscriptions.account_id
          AND a.tenant_id = current_setting('app.tenant_id', true)));

ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoices FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_invoices ON invoices
    USING (EXISTS (
        SELECT 1 FROM subscriptions s
        JOIN accounts a ON a.id = s.account_id
        WHERE s.id = invoices.subscription_id
          AND a.tenant_id = current_setting('app.tenant_id', true)));

ALTER TABLE support_tickets ENABLE ROW LEVEL SECURITY;
ALTER TABLE support_tickets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_tickets ON support_tickets
    USING (EXISTS (
        SELECT 1 FROM accounts a
        WHERE a.id = support_tickets.account_id
          AND a.tenant_id = current_setting('app.tenant_id', true)));

ALTER TABLE ticket_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE ticket_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_events ON ticket_events
    USING (EXISTS (
        SELECT 1 FROM support_tickets t
        JOIN accounts a ON a.id = t.account_id
        WHERE t.id = ticket_events.ticket_id
          AND a.tenant_id = current_setting('app.tenant_id', true)));

-- The application role: read-only. (CREATE ROLE is cluster-wide, so the database module creates
-- strata_app before loading this file.)
GRANT SELECT ON tenants TO strata_app;
GRANT SELECT ON accounts TO strata_app;
GRANT SELECT ON subscriptions TO strata_app;
GRANT SELECT ON invoices TO strata_app;
GRANT SELECT ON agents TO strata_app;
GRANT SELECT ON support_tickets TO strata_app;
GRANT SELECT ON ticket_events TO strata_app;
