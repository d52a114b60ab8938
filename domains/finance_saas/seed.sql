-- finance_saas seed data: deterministic (no random(), no now(), explicit text ids); load after
-- schema.sql. Three firms: north and south (the principals' firms) and west (nobody's).
--
-- Dates straddle the firm's 4-4-5 fiscal calendar (policy.yaml time_ranges): the calendar month
-- May 2026 is 2026-05-01..2026-06-01, the fiscal month (period 5) 2026-05-04..2026-06-01, the
-- fiscal quarter to date 2026-04-06..2026-06-01 (the calendar quarter starts 2026-04-01). Rows
-- on 2026-05-01..03 fall in the calendar month only, rows on 2026-04-01..05 in the calendar
-- quarter only, so calendar and fiscal totals differ. Every account has several transactions
-- and several balance snapshots, so joining balances with transactions fans out; households
-- have several accounts, so households -> accounts is one-to-many.
-- households.legacy_firm_id differs from firm_id for hh_n2 and hh_s2 (the merger's old owner)
-- and is NULL for hh_n3 and hh_w1.
--
-- Per-firm values (docs/domain.md has the full table; tests/test_finance_domain.py checks them
-- against PostgreSQL under each firm's row-level security):
--   net_deposits last_month:        north 860600, south 285900
--   net_deposits last_fiscal_month: north 702200, south 137400

INSERT INTO advisors (id, firm_id, name, region) VALUES
    ('adv_n1', 'north', 'Nora Lind', 'east'),
    ('adv_n2', 'north', 'Omar Haddad', 'west'),
    ('adv_s1', 'south', 'Priya Shah', 'east'),
    ('adv_s2', 'south', 'Quinn Ortega', 'central'),
    ('adv_w1', 'west', 'Rae Kim', 'west');

INSERT INTO households (id, firm_id, legacy_firm_id, advisor_id, name, tax_id, segment) VALUES
    ('hh_n1', 'north', 'north', 'adv_n1', 'Alder Family', '900-11-0001', 'affluent'),
    ('hh_n2', 'north', 'south', 'adv_n2', 'Birch Trust', '900-11-0002', 'private'),
    ('hh_n3', 'north', NULL, 'adv_n1', 'Cedar Household', '900-11-0003', 'retail'),
    ('hh_s1', 'south', 'south', 'adv_s1', 'Dogwood Family', '900-22-0001', 'private'),
    ('hh_s2', 'south', 'north', 'adv_s2', 'Elm Partners', '900-22-0002', 'affluent'),
    ('hh_w1', 'west', NULL, 'adv_w1', 'Fir Estate', '900-33-0001', 'retail');

INSERT INTO accounts (id, household_id, account_type) VALUES
    ('acc_n1a', 'hh_n1', 'brokerage'),
    ('acc_n1b', 'hh_n1', 'ira'),
    ('acc_n2a', 'hh_n2', 'trust'),
    ('acc_n3a', 'hh_n3', 'brokerage'),
    ('acc_s1a', 'hh_s1', 'brokerage'),
    ('acc_s1b', 'hh_s1', 'trust'),
    ('acc_s2a', 'hh_s2', 'ira'),
    ('acc_w1a', 'hh_w1', 'brokerage');

-- A deposit's amount is its gross less the advisory fee; a withdrawal has no gross and no fee.
INSERT INTO transactions (id, account_id, transaction_date, transaction_type, amount_cents, gross_amount_cents, fee_cents) VALUES
    ('tx_01', 'acc_n1a', '2026-03-20', 'deposit', 495000, 500000, 5000),
    ('tx_02', 'acc_n1a', '2026-04-20', 'deposit', 198000, 200000, 2000),
    ('tx_03', 'acc_n1a', '2026-05-02', 'deposit', 99000, 100000, 1000),
    ('tx_04', 'acc_n1a', '2026-05-12', 'withdrawal', -50000, 0, 0),
    ('tx_05', 'acc_n1b', '2026-05-12', 'deposit', 297000, 300000, 3000),
    ('tx_06', 'acc_n1b', '2026-05-27', 'deposit', 79200, 80000, 800),
    ('tx_07', 'acc_n2a', '2026-04-02', 'deposit', 990000, 1000000, 10000),
    ('tx_08', 'acc_n2a', '2026-05-18', 'deposit', 396000, 400000, 4000),
    ('tx_09', 'acc_n2a', '2026-06-03', 'deposit', 247500, 250000, 2500),
    ('tx_10', 'acc_n3a', '2026-05-01', 'deposit', 59400, 60000, 600),
    ('tx_11', 'acc_n3a', '2026-05-29', 'withdrawal', -20000, 0, 0),
    ('tx_12', 'acc_s1a', '2026-04-06', 'deposit', 693000, 700000, 7000),
    ('tx_13', 'acc_s1a', '2026-05-03', 'deposit', 148500, 150000, 1500),
    ('tx_14', 'acc_s1a', '2026-05-20', 'deposit', 89100, 90000, 900),
    ('tx_15', 'acc_s1b', '2026-05-05', 'withdrawal', -120000, 0, 0),
    ('tx_16', 'acc_s1b', '2026-05-26', 'deposit', 39600, 40000, 400),
    ('tx_17', 'acc_s2a', '2026-04-01', 'deposit', 217800, 220000, 2200),
    ('tx_18', 'acc_s2a', '2026-05-15', 'deposit', 128700, 130000, 1300),
    ('tx_19', 'acc_w1a', '2026-05-10', 'deposit', 891000, 900000, 9000),
    ('tx_20', 'acc_w1a', '2026-04-15', 'deposit', 49500, 50000, 500);

-- Balance snapshots (market value of the account on the date).
INSERT INTO balances (id, account_id, balance_date, market_value_cents) VALUES
    ('bal_01', 'acc_n1a', '2026-04-01', 1000000),
    ('bal_02', 'acc_n1a', '2026-04-15', 1020000),
    ('bal_03', 'acc_n1a', '2026-05-01', 1050000),
    ('bal_04', 'acc_n1a', '2026-05-15', 1040000),
    ('bal_05', 'acc_n1b', '2026-05-01', 400000),
    ('bal_06', 'acc_n1b', '2026-05-15', 430000),
    ('bal_07', 'acc_n2a', '2026-04-01', 2000000),
    ('bal_08', 'acc_n2a', '2026-05-01', 2100000),
    ('bal_09', 'acc_n2a', '2026-05-15', 2150000),
    ('bal_10', 'acc_n3a', '2026-05-15', 90000),
    ('bal_11', 'acc_s1a', '2026-04-15', 800000),
    ('bal_12', 'acc_s1a', '2026-05-01', 820000),
    ('bal_13', 'acc_s1a', '2026-05-15', 860000),
    ('bal_14', 'acc_s1b', '2026-05-01', 300000),
    ('bal_15', 'acc_s1b', '2026-05-15', 180000),
    ('bal_16', 'acc_s2a', '2026-04-01', 250000),
    ('bal_17', 'acc_s2a', '2026-05-15', 390000),
    ('bal_18', 'acc_w1a', '2026-05-15', 950000);
