-- finance_saas: a wealth-management SaaS (PostgreSQL 15), in the published shape (policystrata
-- 1.x finance_saas, schema v3). Firms are the tenants: `north` and `south` (and `west`, a firm no
-- principal of policy.yaml belongs to).
--
-- Tenancy model: advisors and households carry the firm (firm_id); every other table reaches
-- its firm through foreign keys:
--   accounts.household_id -> households,
--   transactions.account_id -> accounts -> households,
--   balances.account_id -> accounts -> households.
-- households.advisor_id -> advisors links two tables that each carry firm_id.
-- households.legacy_firm_id is the ownership field of the firm-merger era: kept for old
-- integrations, NOT the tenant boundary, and for some households it names another firm.
-- Every id is text (hh_n1, acc_n1a, ...), so a firm id compared with a key is a text comparison.
--
-- Row-level security: ENABLEd on every table, not FORCEd (as published: the table owner, which
-- loads the seed, is not subject to it; the application role is). advisors and households
-- compare firm_id with the session setting policystrata.firm_id, which the application sets
-- per transaction (set_config('policystrata.firm_id', 'north', true)); accounts, transactions
-- and balances are scoped through households by EXISTS. current_setting('policystrata.firm_id',
-- true) is NULL when unset, so an unscoped session sees no rows (fail closed).
--
-- The application connects as strata_app, which only has SELECT.

CREATE TABLE advisors (
    id text PRIMARY KEY,
    firm_id text NOT NULL,
    name text NOT NULL,
    region text NOT NULL
);

CREATE TABLE households (
    id text PRIMARY KEY,
    firm_id text NOT NULL,
    legacy_firm_id text,
    advisor_id text NOT NULL REFERENCES advisors (id),
    name text NOT NULL,
    tax_id text NOT NULL,
    segment text NOT NULL
);

CREATE TABLE accounts (
    id text PRIMARY KEY,
    household_id text NOT NULL REFERENCES households (id),
    account_type text NOT NULL
);

CREATE TABLE transactions (
    id text PRIMARY KEY,
    account_id text NOT NULL REFERENCES accounts (id),
    transaction_date date NOT NULL,
    transaction_type text NOT NULL,
    amount_cents integer NOT NULL,
    gross_amount_cents integer NOT NULL,
    fee_cents integer NOT NULL
);

CREATE TABLE balances (
    id text PRIMARY KEY,
    account_id text NOT NULL REFERENCES accounts (id),
    balance_date date NOT NULL,
    market_value_cents integer NOT NULL
);

-- Row-level security: ENABLE (not FORCE) on every table.
ALTER TABLE advisors ENABLE ROW LEVEL SECURITY;
CREATE POLICY firm_isolation_advisors ON advisors
    USING (firm_id = current_setting('policystrata.firm_id', true));

ALTER TABLE households ENABLE ROW LEVEL SECURITY;
CREATE POLICY firm_isolation_households ON households
    USING (firm_id = current_setting('policystrata.firm_id', true));

ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY firm_isolation_accounts ON accounts
    USING (EXISTS (
        SELECT 1 FROM households h
        WHERE h.id = accounts.household_id
          AND h.firm_id = current_setting('policystrata.firm_id', true)));

ALTER TABLE transactions ENABLE ROW LEVEL SECURITY;
CREATE POLICY firm_isolation_transactions ON transactions
    USING (EXISTS (
        SELECT 1 FROM accounts a
        JOIN households h ON h.id = a.household_id
        WHERE a.id = transactions.account_id
          AND h.firm_id = current_setting('policystrata.firm_id', true)));

ALTER TABLE balances ENABLE ROW LEVEL SECURITY;
CREATE POLICY firm_isolation_balances ON balances
    USING (EXISTS (
        SELECT 1 FROM accounts a
        JOIN households h ON h.id = a.household_id
        WHERE a.id = balances.account_id
          AND h.firm_id = current_setting('policystrata.firm_id', true)));

-- The application role: read-only. (CREATE ROLE is cluster-wide, so the database module creates
-- strata_app before loading this file.)
GRANT SELECT ON advisors TO strata_app;
GRANT SELECT ON households TO strata_app;
GRANT SELECT ON accounts TO strata_app;
GRANT SELECT ON transactions TO strata_app;
GRANT SELECT ON balances TO strata_app;
