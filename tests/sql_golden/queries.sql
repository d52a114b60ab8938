-- name: simple_tenant_literal
select count(*) from accounts a where a.tenant_id = 'acme'
-- name: unaliased_table
select accounts.region from accounts where accounts.tenant_id = 'acme'
-- name: unqualified_single_table
select region from accounts where tenant_id = 'acme'
-- name: unqualified_two_tables_schema
select region, severity from accounts join support_tickets on support_tickets.account_id = accounts.id where severity = 'high'
-- name: in_list
select id from accounts a where a.tenant_id in ('acme', 'beta')
-- name: not_in_list
select id from accounts a where a.tenant_id not in ('beta')
-- name: reversed_literal
select id from accounts a where 'acme' = a.tenant_id
-- name: or_one_equals_one
select id from accounts a where a.tenant_id = 'acme' or 1 = 1
-- name: not_not_equal
select id from accounts a where not (a.tenant_id <> 'acme')
-- name: not_of_or
select id from accounts a where not (a.tenant_id <> 'acme' or a.region = 'eu')
-- name: not_of_and
select id from accounts a where not (a.tenant_id = 'acme' and a.region = 'eu')
-- name: case_expression
select id from accounts a where case when a.tenant_id = 'acme' then true else false end
-- name: coalesce_wrapped
select id from accounts a where coalesce(a.tenant_id = 'acme', false)
-- name: param_dollar
select id from accounts a where a.tenant_id = $1
-- name: param_colon
select id from accounts a where a.tenant_id = :tenant
-- name: param_pyformat
select id from accounts a where a.tenant_id = %(tenant)s
-- name: param_qmark
select id from accounts a where a.tenant_id = ? and a.region = ?
-- name: param_any_array
select id from accounts a where a.tenant_id = any($1)
-- name: setting
select id from accounts a where a.tenant_id = current_setting('app.tenant_id', true)
-- name: cast_column_and_value
select id from accounts a where a.tenant_id::text = 'acme'::text
-- name: integer_literal
select id from subscriptions s where s.seats >= 10 and s.seats < 100
-- name: negative_and_float
select id from support_tickets t where t.resolution_hours > -1.5
-- name: boolean_literal
select id from support_tickets t where t.escalated = true
-- name: is_null
select id from support_tickets t where t.resolution_hours is null and t.agent_id is not null
-- name: like_ilike
select id from accounts a where a.customer_email like '%@acme.com' and a.name ilike 'a%'
-- name: between_dates
select id from invoices i where i.invoice_date between '2026-05-01' and '2026-05-31'
-- name: date_keyword_literal
select id from invoices i where i.invoice_date >= date '2026-05-01' and i.invoice_date < date '2026-06-01'
-- name: date_gt_lte
select id from invoices i where i.invoice_date > '2026-04-30' and i.invoice_date <= '2026-05-31'
-- name: date_trunc_month
select id from support_tickets t where date_trunc('month', t.opened_at) = '2026-05-01'
-- name: timestamp_bounds
select id from ticket_events e where e.event_at >= '2026-05-01 00:00:00' and e.event_at < '2026-06-01 12:30:00'
-- name: relative_time
select id from support_tickets t where t.opened_at >= current_date - interval '30 days'
-- name: time_bound_under_or
select id from invoices i where i.invoice_date >= '2026-05-01' or i.tenant_id = 'acme'
-- name: inner_join
select a.region, t.id from accounts a join support_tickets t on t.account_id = a.id
-- name: left_join_on_filter
select a.id from accounts a left join support_tickets t on t.account_id = a.id and t.tenant_id = 'acme' and a.region = 'eu'
-- name: right_join
select a.id from accounts a right join support_tickets t on t.account_id = a.id
-- name: full_join
select a.id from accounts a full join invoices i on i.account_id = a.id and i.tenant_id = 'acme'
-- name: cross_join
select a.id from accounts a cross join tenants x
-- name: comma_join
select a.id from accounts a, tenants x where x.id = a.tenant_id
-- name: using_join
select id from invoices join subscriptions using (account_id)
-- name: join_chain
select count(*) from invoices i join accounts a on a.id = i.account_id join support_tickets t on t.account_id = a.id
-- name: lateral_join
select a.id, l.n from accounts a cross join lateral (select count(*) n from support_tickets t where t.account_id = a.id) l
-- name: cte_scoped
with c as (select * from accounts a where a.tenant_id = 'acme') select c.region from c
-- name: cte_chain
with c1 as (select id, tenant_id from accounts), c2 as (select id from c1 where tenant_id = 'acme') select id from c2
-- name: derived_table
select x.r from (select a.region r from accounts a where a.tenant_id = 'acme') x
-- name: scalar_subquery
select a.id, (select max(i.net_amount_cents) from invoices i where i.account_id = a.id) as top from accounts a
-- name: in_subquery
select t.id from support_tickets t where t.account_id in (select a.id from accounts a where a.tenant_id = 'acme')
-- name: exists_uncorrelated
select a.id from accounts a where exists (select 1 from tenants x where x.id = 'acme')
-- name: exists_correlated
select a.id from accounts a where exists (select 1 from support_tickets t where t.account_id = a.id)
-- name: not_exists
select a.id from accounts a where not exists (select 1 from invoices i where i.account_id = a.id)
-- name: union_branches
select a.id from accounts a where a.tenant_id = 'acme' union all select b.id from accounts b where b.tenant_id = 'beta'
-- name: intersect_except
select id from accounts intersect select account_id from invoices except select account_id from subscriptions
-- name: union_in_cte
with u as (select id, region from accounts where tenant_id = 'acme' union select id, region from accounts where tenant_id = 'beta') select region from u
-- name: output_alias_lineage
select a.customer_email as contact from accounts a
-- name: output_through_cte_and_subquery
with c as (select customer_email e from accounts) select y.m from (select e as m from c) y
-- name: star_expansion
select * from agents g
-- name: qualified_star
select t.*, a.region from support_tickets t join accounts a on a.id = t.account_id
-- name: expression_lineage
select lower(a.customer_email) || a.region as mixed from accounts a
-- name: count_distinct
select count(distinct t.id) from support_tickets t
-- name: count_star_and_one
select count(*), count(1) from support_tickets
-- name: aggregate_filter
select count(distinct t.id) filter (where t.escalated) from support_tickets t
-- name: sum_avg_min_max
select sum(i.net_amount_cents), avg(i.gross_amount_cents), min(i.invoice_date), max(i.invoice_date) from invoices i
-- name: group_by_positional_and_alias
select a.region as r, date_trunc('month', t.opened_at) as m, count(*) from accounts a join support_tickets t on t.account_id = a.id group by 1, m
-- name: having
select a.region, count(*) from accounts a group by a.region having count(*) > 5 and a.region <> 'eu'
-- name: distinct
select distinct a.region from accounts a
-- name: distinct_on
select distinct on (t.account_id) t.account_id, t.opened_at from support_tickets t order by t.account_id, t.opened_at desc
-- name: limit_offset
select id from accounts order by id limit 10 offset 20
-- name: fetch_first
select id from accounts fetch first 5 rows only
-- name: limit_param
select id from accounts limit $2
-- name: tablesample
select count(*) from support_tickets t tablesample bernoulli (10)
-- name: table_function
select g.n from generate_series(1, 3) g(n)
-- name: unnest_function
select u.x from unnest(array['acme', 'beta']) u(x)
-- name: functions_called
select upper(a.name), coalesce(a.legacy_tenant_id, a.tenant_id), now() from accounts a
-- name: string_update_literal
select id from ticket_events e where e.kind = 'update; delete from accounts'
-- name: comment_hides_predicate
select id from accounts a /* where a.tenant_id = 'acme' */ where a.region = 'eu' -- and a.tenant_id = 'acme'
-- name: legacy_tenant_column
select id from accounts a where a.legacy_tenant_id = 'acme'
-- name: quoted_identifiers
select "A"."region" from "accounts" "A" where "A"."tenant_id" = 'acme'
-- name: schema_qualified
select a.id from public.accounts a where a.tenant_id = 'acme'
-- name: nested_parens
select id from accounts a where ((a.tenant_id = 'acme') and ((a.region = 'eu')))
-- name: set_config_rejected
select set_config('app.tenant_id', 'beta', true)
-- name: writable_cte_rejected
with d as (delete from accounts returning id) select id from d
-- name: multi_statement_rejected
select 1; commit
-- name: unparseable
select from where
-- name: uppercase_unquoted
SELECT COUNT(DISTINCT ST.ID) AS VALUE FROM PUBLIC.SUPPORT_TICKETS ST WHERE ST.TENANT_ID = 'acme' AND "st"."opened_at" >= '2026-05-01'
-- name: quoted_alias_keeps_case
select "St".id from support_tickets "St" where st.tenant_id = 'acme'
-- name: star_cte_consumer_uses_region
with t as (select * from accounts where tenant_id = 'acme') select t.region from t
-- name: whole_row_reference
select row_to_json(a), count(g.*) from accounts a join agents g on g.tenant_id = a.tenant_id group by 1
-- name: qualified_star_in_function
select to_jsonb(a.*) from accounts a join agents g on g.tenant_id = a.tenant_id
-- name: parenthesized_statement
((select a.region from accounts a where a.tenant_id = 'acme')) order by 1 limit 100
-- name: or_of_equalities_is_in
select id from accounts a where (a.tenant_id = 'acme' or a.tenant_id = $1) and (a.region = 'eu' or a.name = 'x')
-- name: nullif_setting
select id from accounts a where a.tenant_id = nullif(current_setting('app.tenant_id', true), '')
-- name: recursive_cte
with recursive r as (select id, 1 as n from accounts where tenant_id = 'acme' union all select id, n + 1 from r where n < 3) select id from r
-- name: lateral_correlated_aggregate
select a.region, x.n from accounts a cross join lateral (select count(*) as n from support_tickets t where t.account_id = a.id) x where a.tenant_id = 'acme'
-- name: aggregate_filter_predicates
select count(distinct t.id) filter (where t.escalated and not (t.severity <> 'high')) from support_tickets t where t.escalated is not null
-- name: negated_is_and_like
select id from accounts a where a.legacy_tenant_id is not null and a.name not like 'x%' and a.region not ilike 'eu' and not a.customer_email like '%@x'
-- name: date_arithmetic_bounds
select count(*) from support_tickets t where t.opened_at >= make_date(2026, 5, 1) and t.opened_at < date '2026-05-01' + interval '1 month' and t.opened_at <= '2026-06-01'::date - 1
-- name: timestamp_plus_hours
select count(*) from ticket_events e where e.event_at >= timestamp '2026-05-01' and e.event_at < timestamp '2026-05-01' + interval '1 day' + interval '2 hours'
-- name: left_join_reduced_by_where
select count(distinct t.id) from support_tickets t left join accounts a on a.id = t.account_id left join agents g on g.id = t.agent_id where a.tenant_id = 'acme' and (g.name = 'x' or g.id is null)
-- name: anonymous_params_in_text_order
with x as (select id from accounts where tenant_id = ?) select count(*) from x join support_tickets t on t.account_id = x.id where t.severity = %s limit ? offset %s
-- name: limit_inside_derived_table
select x.region, generate_series(1, 2) from (select a.region from accounts a order by a.region fetch first 10 rows only) x
-- name: window_function_not_aggregated
select x.account_id, x.r from (select s.account_id, rank() over (partition by s.plan order by s.seats desc) as r from subscriptions s) x
