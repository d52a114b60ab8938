-- support_saas seed data: deterministic (no random(), no now(), explicit ids); load after
-- schema.sql. Dates straddle the calendar month May 2026 (2026-05-01..2026-06-01) and the fiscal
-- month 2026-04-27..2026-05-25, so calendar and fiscal totals differ. Every account has several
-- invoices and several tickets, so joining invoices with support_tickets fans out; accounts 1
-- and 4 have two subscriptions, so accounts -> subscriptions is one-to-many.
-- accounts.legacy_tenant_id differs from tenant_id for accounts 2 and 5 (old ownership).
--
-- Per-tenant values the tests compute by hand (last_month = 2026-05-01..2026-06-01):
--   ticket_count:  acme 7, beta 5     escalated_tickets: acme 2, beta 2
--   net_revenue:   acme 1206700, beta 586800

INSERT INTO tenants (id, name) VALUES
    ('acme', 'Acme Corp'),
    ('beta', 'Beta Industries'),
    ('gamma', 'Gamma Labs');

INSERT INTO accounts (id, tenant_id, legacy_tenant_id, name, region, customer_email) VALUES
    (1, 'acme', 'acme', 'Acme Retail', 'emea', 'ops@acme-retail.example'),
    (2, 'acme', 'beta', 'Acme Logistics', 'na', 'billing@acme-logistics.example'),
    (3, 'acme', 'acme', 'Acme Health', 'apac', 'it@acme-health.example'),
    (4, 'beta', 'beta', 'Beta Foods', 'na', 'finance@beta-foods.example'),
    (5, 'beta', 'acme', 'Beta Energy', 'emea', 'admin@beta-energy.example'),
    (6, 'gamma', NULL, 'Gamma Research', 'emea', 'lab@gamma-research.example');

INSERT INTO subscriptions (id, account_id, plan, status) VALUES
    (1, 1, 'pro', 'active'),
    (2, 2, 'enterprise', 'active'),
    (3, 3, 'starter', 'active'),
    (4, 4, 'pro', 'active'),
    (5, 5, 'starter', 'active'),
    (6, 6, 'enterprise', 'active'),
    (7, 1, 'starter', 'cancelled'),
    (8, 4, 'enterprise', 'active');

INSERT INTO invoices (id, subscription_id, invoice_date, gross_amount_cents, net_amount_cents) VALUES
    (1, 1, '2026-03-31', 250000, 220000),
    (2, 1, '2026-04-28', 260000, 230000),
    (3, 1, '2026-05-05', 260000, 231000),
    (4, 1, '2026-05-28', 30000, 27000),
    (5, 2, '2026-04-29', 900000, 810000),
    (6, 2, '2026-05-12', 910000, 820000),
    (7, 2, '2026-05-20', 45000, 40500),
    (8, 3, '2026-05-02', 49000, 44100),
    (9, 3, '2026-05-26', 49000, 44100),
    (10, 4, '2026-04-27', 400000, 360000),
    (11, 4, '2026-05-08', 410000, 369000),
    (12, 4, '2026-05-30', 12000, 10800),
    (13, 5, '2026-05-15', 80000, 72000),
    (14, 5, '2026-05-25', 80000, 72000),
    (15, 5, '2026-06-01', 81000, 72900),
    (16, 6, '2026-04-30', 600000, 540000),
    (17, 6, '2026-05-18', 600000, 540000),
    (18, 7, '2026-04-10', 15000, 13500),
    (19, 8, '2026-05-16', 70000, 63000);

INSERT INTO agents (id, tenant_id, email, name) VALUES
    (1, 'acme', 'ana@acme.example', 'Ana Ortiz'),
    (2, 'acme', 'bo@acme.example', 'Bo Chen'),
    (3, 'beta', 'cy@beta.example', 'Cy Diaz'),
    (4, 'gamma', 'di@gamma.example', 'Di Evans');

-- ticket 7 was still open at as_of; its resolution_hours is the time open so far.
INSERT INTO support_tickets (id, account_id, assigned_agent_id, severity, escalated, resolution_hours, opened_at) VALUES
    (1, 1, 1, 'high', true, 30, '2026-04-28'),
    (2, 1, 2, 'low', false, 4, '2026-05-03'),
    (3, 1, 1, 'medium', false, 10, '2026-05-14'),
    (4, 1, 2, 'urgent', true, 2, '2026-05-27'),
    (5, 2, 1, 'high', true, 18, '2026-05-06'),
    (6, 2, 2, 'low', false, 6, '2026-05-21'),
    (7, 2, 1, 'medium', false, 40, '2026-06-02'),
    (8, 3, 2, 'medium', false, 8, '2026-05-11'),
    (9, 3, 1, 'high', false, 12, '2026-05-29'),
    (10, 4, 3, 'urgent', true, 3, '2026-04-30'),
    (11, 4, 3, 'high', true, 20, '2026-05-09'),
    (12, 4, 3, 'low', false, 5, '2026-05-19'),
    (13, 5, 3, 'medium', false, 9, '2026-05-04'),
    (14, 5, 3, 'low', false, 7, '2026-05-13'),
    (15, 5, 3, 'high', true, 16, '2026-05-26'),
    (16, 6, 4, 'low', false, 2, '2026-05-07'),
    (17, 6, 4, 'urgent', true, 2, '2026-05-22');

INSERT INTO ticket_events (id, ticket_id, event_type, created_at) VALUES
    (1, 1, 'opened', '2026-04-28 09:00:00+00'),
    (2, 1, 'escalated', '2026-04-28 15:30:00+00'),
    (3, 1, 'resolved', '2026-04-28 23:00:00+00'),
    (4, 2, 'opened', '2026-05-03 09:00:00+00'),
    (5, 2, 'resolved', '2026-05-03 23:00:00+00'),
    (6, 3, 'opened', '2026-05-14 09:00:00+00'),
    (7, 3, 'resolved', '2026-05-14 23:00:00+00'),
    (8, 4, 'opened', '2026-05-27 09:00:00+00'),
    (9, 4, 'escalated', '2026-05-27 15:30:00+00'),
    (10, 4, 'resolved', '2026-05-27 23:00:00+00'),
    (11, 5, 'opened', '2026-05-06 09:00:00+00'),
    (12, 5, 'escalated', '2026-05-06 15:30:00+00'),
    (13, 5, 'resolved', '2026-05-06 23:00:00+00'),
    (14, 6, 'opened', '2026-05-21 09:00:00+00'),
    (15, 6, 'resolved', '2026-05-21 23:00:00+00'),
    (16, 7, 'opened', '2026-06-02 09:00:00+00'),
    (17, 8, 'opened', '2026-05-11 09:00:00+00'),
    (18, 8, 'resolved', '2026-05-11 23:00:00+00'),
    (19, 9, 'opened', '2026-05-29 09:00:00+00'),
    (20, 9, 'resolved', '2026-05-29 23:00:00+00'),
    (21, 10, 'opened', '2026-04-30 09:00:00+00'),
    (22, 10, 'escalated', '2026-04-30 15:30:00+00'),
    (23, 10, 'resolved', '2026-04-30 23:00:00+00'),
    (24, 11, 'opened', '2026-05-09 09:00:00+00'),
    (25, 11, 'escalated', '2026-05-09 15:30:00+00'),
    (26, 11, 'resolved', '2026-05-09 23:00:00+00'),
    (27, 12, 'opened', '2026-05-19 09:00:00+00'),
    (28, 12, 'resolved', '2026-05-19 23:00:00+00'),
    (29, 13, 'opened', '2026-05-04 09:00:00+00'),
    (30, 13, 'resolved', '2026-05-04 23:00:00+00'),
    (31, 14, 'opened', '2026-05-13 09:00:00+00'),
    (32, 14, 'resolved', '2026-05-13 23:00:00+00'),
    (33, 15, 'opened', '2026-05-26 09:00:00+00'),
    (34, 15, 'escalated', '2026-05-26 15:30:00+00'),
    (35, 15, 'resolved', '2026-05-26 23:00:00+00'),
    (36, 16, 'opened', '2026-05-07 09:00:00+00'),
    (37, 16, 'resolved', '2026-05-07 23:00:00+00'),
    (38, 17, 'opened', '2026-05-22 09:00:00+00'),
    (39, 17, 'escalated', '2026-05-22 15:30:00+00'),
    (40, 17, 'resolved', '2026-05-22 23:00:00+00');
