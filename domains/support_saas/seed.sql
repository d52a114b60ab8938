-- support_saas seed data: deterministic (no random(), no now()); load after schema.sql.
-- Dates straddle the calendar month May 2026 (2026-05-01..2026-06-01) and the fiscal month
-- 2026-04-27..2026-05-25, so calendar and fiscal totals differ. Every account has several
-- invoices and several tickets, so joining invoices with support_tickets fans out.
-- accounts.legacy_tenant_id differs from tenant_id for acc_acme_2 and acc_beta_2 (old ownership).

INSERT INTO tenants (id, name, created_on) VALUES
    ('acme', 'Acme Corp', '2024-01-15'),
    ('beta', 'Beta Industries', '2024-03-01'),
    ('gamma', 'Gamma Labs', '2025-02-10');

INSERT INTO accounts (id, tenant_id, legacy_tenant_id, name, region, customer_email, created_on) VALUES
    ('acc_acme_1', 'acme', 'acme', 'Acme Retail', 'emea', 'ops@acme-retail.example', '2024-02-01'),
    ('acc_acme_2', 'acme', 'beta', 'Acme Logistics', 'na', 'billing@acme-logistics.example', '2024-05-12'),
    ('acc_acme_3', 'acme', 'acme', 'Acme Health', 'apac', 'it@acme-health.example', '2025-01-20'),
    ('acc_beta_1', 'beta', 'beta', 'Beta Foods', 'na', 'finance@beta-foods.example', '2024-03-10'),
    ('acc_beta_2', 'beta', 'acme', 'Beta Energy', 'emea', 'admin@beta-energy.example', '2024-08-30'),
    ('acc_gamma_1', 'gamma', NULL, 'Gamma Research', 'emea', 'lab@gamma-research.example', '2025-02-15');

INSERT INTO subscriptions (id, tenant_id, account_id, plan, seats, started_on) VALUES
    ('sub_acme_1', 'acme', 'acc_acme_1', 'pro', 25, '2024-02-01'),
    ('sub_acme_2', 'acme', 'acc_acme_2', 'enterprise', 120, '2024-05-12'),
    ('sub_acme_3', 'acme', 'acc_acme_3', 'starter', 5, '2025-01-20'),
    ('sub_beta_1', 'beta', 'acc_beta_1', 'pro', 40, '2024-03-10'),
    ('sub_beta_2', 'beta', 'acc_beta_2', 'starter', 8, '2024-08-30'),
    ('sub_gamma_1', 'gamma', 'acc_gamma_1', 'enterprise', 60, '2025-02-15');

INSERT INTO invoices (id, tenant_id, account_id, invoice_date, gross_amount_cents, net_amount_cents) VALUES
    ('inv_acme_1_1', 'acme', 'acc_acme_1', '2026-03-31', 250000, 220000),
    ('inv_acme_1_2', 'acme', 'acc_acme_1', '2026-04-28', 260000, 230000),
    ('inv_acme_1_3', 'acme', 'acc_acme_1', '2026-05-05', 260000, 231000),
    ('inv_acme_1_4', 'acme', 'acc_acme_1', '2026-05-28', 30000, 27000),
    ('inv_acme_2_1', 'acme', 'acc_acme_2', '2026-04-29', 900000, 810000),
    ('inv_acme_2_2', 'acme', 'acc_acme_2', '2026-05-12', 910000, 820000),
    ('inv_acme_2_3', 'acme', 'acc_acme_2', '2026-05-20', 45000, 40500),
    ('inv_acme_3_1', 'acme', 'acc_acme_3', '2026-05-02', 49000, 44100),
    ('inv_acme_3_2', 'acme', 'acc_acme_3', '2026-05-26', 49000, 44100),
    ('inv_beta_1_1', 'beta', 'acc_beta_1', '2026-04-27', 400000, 360000),
    ('inv_beta_1_2', 'beta', 'acc_beta_1', '2026-05-08', 410000, 369000),
    ('inv_beta_1_3', 'beta', 'acc_beta_1', '2026-05-30', 12000, 10800),
    ('inv_beta_2_1', 'beta', 'acc_beta_2', '2026-05-15', 80000, 72000),
    ('inv_beta_2_2', 'beta', 'acc_beta_2', '2026-05-25', 80000, 72000),
    ('inv_beta_2_3', 'beta', 'acc_beta_2', '2026-06-01', 81000, 72900),
    ('inv_gamma_1_1', 'gamma', 'acc_gamma_1', '2026-04-30', 600000, 540000),
    ('inv_gamma_1_2', 'gamma', 'acc_gamma_1', '2026-05-18', 600000, 540000);

INSERT INTO agents (id, tenant_id, name, email) VALUES
    ('agt_acme_1', 'acme', 'Ana Ortiz', 'ana@acme.example'),
    ('agt_acme_2', 'acme', 'Bo Chen', 'bo@acme.example'),
    ('agt_beta_1', 'beta', 'Cy Diaz', 'cy@beta.example'),
    ('agt_gamma_1', 'gamma', 'Di Evans', 'di@gamma.example');

-- resolution_hours NULL = still open.
INSERT INTO support_tickets (id, tenant_id, account_id, agent_id, opened_at, severity, escalated, resolution_hours) VALUES
    ('tkt_acme_1_1', 'acme', 'acc_acme_1', 'agt_acme_1', '2026-04-28', 'high', true, '30.00'),
    ('tkt_acme_1_2', 'acme', 'acc_acme_1', 'agt_acme_2', '2026-05-03', 'low', false, '4.00'),
    ('tkt_acme_1_3', 'acme', 'acc_acme_1', 'agt_acme_1', '2026-05-14', 'medium', false, '10.50'),
    ('tkt_acme_1_4', 'acme', 'acc_acme_1', 'agt_acme_2', '2026-05-27', 'urgent', true, '2.50'),
    ('tkt_acme_2_1', 'acme', 'acc_acme_2', 'agt_acme_1', '2026-05-06', 'high', true, '18.00'),
    ('tkt_acme_2_2', 'acme', 'acc_acme_2', 'agt_acme_2', '2026-05-21', 'low', false, '6.00'),
    ('tkt_acme_2_3', 'acme', 'acc_acme_2', 'agt_acme_1', '2026-06-02', 'medium', false, NULL),
    ('tkt_acme_3_1', 'acme', 'acc_acme_3', 'agt_acme_2', '2026-05-11', 'medium', false, '8.00'),
    ('tkt_acme_3_2', 'acme', 'acc_acme_3', 'agt_acme_1', '2026-05-29', 'high', false, '12.00'),
    ('tkt_beta_1_1', 'beta', 'acc_beta_1', 'agt_beta_1', '2026-04-30', 'urgent', true, '3.00'),
    ('tkt_beta_1_2', 'beta', 'acc_beta_1', 'agt_beta_1', '2026-05-09', 'high', true, '20.00'),
    ('tkt_beta_1_3', 'beta', 'acc_beta_1', 'agt_beta_1', '2026-05-19', 'low', false, '5.00'),
    ('tkt_beta_2_1', 'beta', 'acc_beta_2', 'agt_beta_1', '2026-05-04', 'medium', false, '9.00'),
    ('tkt_beta_2_2', 'beta', 'acc_beta_2', 'agt_beta_1', '2026-05-13', 'low', false, '7.00'),
    ('tkt_beta_2_3', 'beta', 'acc_beta_2', 'agt_beta_1', '2026-05-26', 'high', true, '16.00'),
    ('tkt_gamma_1_1', 'gamma', 'acc_gamma_1', 'agt_gamma_1', '2026-05-07', 'low', false, '2.00'),
    ('tkt_gamma_1_2', 'gamma', 'acc_gamma_1', 'agt_gamma_1', '2026-05-22', 'urgent', true, '1.50');

INSERT INTO ticket_events (id, tenant_id, ticket_id, event_at, kind) VALUES
    ('evt_acme_1_1_1', 'acme', 'tkt_acme_1_1', '2026-04-28 09:00:00+00', 'opened'),
    ('evt_acme_1_1_2', 'acme', 'tkt_acme_1_1', '2026-04-28 15:30:00+00', 'escalated'),
    ('evt_acme_1_1_3', 'acme', 'tkt_acme_1_1', '2026-04-28 23:00:00+00', 'resolved'),
    ('evt_acme_1_2_1', 'acme', 'tkt_acme_1_2', '2026-05-03 09:00:00+00', 'opened'),
    ('evt_acme_1_2_3', 'acme', 'tkt_acme_1_2', '2026-05-03 23:00:00+00', 'resolved'),
    ('evt_acme_1_3_1', 'acme', 'tkt_acme_1_3', '2026-05-14 09:00:00+00', 'opened'),
    ('evt_acme_1_3_3', 'acme', 'tkt_acme_1_3', '2026-05-14 23:00:00+00', 'resolved'),
    ('evt_acme_1_4_1', 'acme', 'tkt_acme_1_4', '2026-05-27 09:00:00+00', 'opened'),
    ('evt_acme_1_4_2', 'acme', 'tkt_acme_1_4', '2026-05-27 15:30:00+00', 'escalated'),
    ('evt_acme_1_4_3', 'acme', 'tkt_acme_1_4', '2026-05-27 23:00:00+00', 'resolved'),
    ('evt_acme_2_1_1', 'acme', 'tkt_acme_2_1', '2026-05-06 09:00:00+00', 'opened'),
    ('evt_acme_2_1_2', 'acme', 'tkt_acme_2_1', '2026-05-06 15:30:00+00', 'escalated'),
    ('evt_acme_2_1_3', 'acme', 'tkt_acme_2_1', '2026-05-06 23:00:00+00', 'resolved'),
    ('evt_acme_2_2_1', 'acme', 'tkt_acme_2_2', '2026-05-21 09:00:00+00', 'opened'),
    ('evt_acme_2_2_3', 'acme', 'tkt_acme_2_2', '2026-05-21 23:00:00+00', 'resolved'),
    ('evt_acme_2_3_1', 'acme', 'tkt_acme_2_3', '2026-06-02 09:00:00+00', 'opened'),
    ('evt_acme_3_1_1', 'acme', 'tkt_acme_3_1', '2026-05-11 09:00:00+00', 'opened'),
    ('evt_acme_3_1_3', 'acme', 'tkt_acme_3_1', '2026-05-11 23:00:00+00', 'resolved'),
    ('evt_acme_3_2_1', 'acme', 'tkt_acme_3_2', '2026-05-29 09:00:00+00', 'opened'),
    ('evt_acme_3_2_3', 'acme', 'tkt_acme_3_2', '2026-05-29 23:00:00+00', 'resolved'),
    ('evt_beta_1_1_1', 'beta', 'tkt_beta_1_1', '2026-04-30 09:00:00+00', 'opened'),
    ('evt_beta_1_1_2', 'beta', 'tkt_beta_1_1', '2026-04-30 15:30:00+00', 'escalated'),
    ('evt_beta_1_1_3', 'beta', 'tkt_beta_1_1', '2026-04-30 23:00:00+00', 'resolved'),
    ('evt_beta_1_2_1', 'beta', 'tkt_beta_1_2', '2026-05-09 09:00:00+00', 'opened'),
    ('evt_beta_1_2_2', 'beta', 'tkt_beta_1_2', '2026-05-09 15:30:00+00', 'escalated'),
    ('evt_beta_1_2_3', 'beta', 'tkt_beta_1_2', '2026-05-09 23:00:00+00', 'resolved'),
    ('evt_beta_1_3_1', 'beta', 'tkt_beta_1_3', '2026-05-19 09:00:00+00', 'opened'),
    ('evt_beta_1_3_3', 'beta', 'tkt_beta_1_3', '2026-05-19 23:00:00+00', 'resolved'),
    ('evt_beta_2_1_1', 'beta', 'tkt_beta_2_1', '2026-05-04 09:00:00+00', 'opened'),
    ('evt_beta_2_1_3', 'beta', 'tkt_beta_2_1', '2026-05-04 23:00:00+00', 'resolved'),
    ('evt_beta_2_2_1', 'beta', 'tkt_beta_2_2', '2026-05-13 09:00:00+00', 'opened'),
    ('evt_beta_2_2_3', 'beta', 'tkt_beta_2_2', '2026-05-13 23:00:00+00', 'resolved'),
    ('evt_beta_2_3_1', 'beta', 'tkt_beta_2_3', '2026-05-26 09:00:00+00', 'opened'),
    ('evt_beta_2_3_2', 'beta', 'tkt_beta_2_3', '2026-05-26 15:30:00+00', 'escalated'),
    ('evt_beta_2_3_3', 'beta', 'tkt_beta_2_3', '2026-05-26 23:00:00+00', 'resolved'),
    ('evt_gamma_1_1_1', 'gamma', 'tkt_gamma_1_1', '2026-05-07 09:00:00+00', 'opened'),
    ('evt_gamma_1_1_3', 'gamma', 'tkt_gamma_1_1', '2026-05-07 23:00:00+00', 'resolved'),
    ('evt_gamma_1_2_1', 'gamma', 'tkt_gamma_1_2', '2026-05-22 09:00:00+00', 'opened'),
    ('evt_gamma_1_2_2', 'gamma', 'tkt_gamma_1_2', '2026-05-22 15:30:00+00', 'escalated'),
    ('evt_gamma_1_2_3', 'gamma', 'tkt_gamma_1_2', '2026-05-22 23:00:00+00', 'resolved');
