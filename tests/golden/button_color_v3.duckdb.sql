-- step aggregates (query)
WITH assignments AS (
  SELECT
    src.user_id AS unit_id,
    COALESCE(CAST(src.group_name AS TEXT), '(null)') AS variant,
    src.ts AS exposed_at,
    src.country AS country
  FROM raw.exposures AS src
  WHERE
    src.experiment = 'button_color_v3'
    AND src.ts >= CAST('2026-10-15 00:00:00' AS TIMESTAMP)
    AND src.ts < CAST('2026-10-30 00:00:00' AS TIMESTAMP)
    AND NOT src.user_id IS NULL
), __wn_stage_exposures AS MATERIALIZED (
  SELECT
    unit_id,
    CASE WHEN MIN(variant) = MAX(variant) THEN MIN(variant) ELSE '__multiple__' END AS variant,
    MIN(exposed_at) AS first_exposure_at,
    COUNT(*) AS exposure_count,
    ARG_MIN_NULL(CAST(country AS TEXT), exposed_at) AS country
  FROM assignments
  GROUP BY
    unit_id
), __wn_scan__events AS (
  /* plan: one scan of source 'events' joined once to the exposures; 29 unit columns */
  /* windows: post = [first exposure + start_day, min(analysis end, first exposure + end_day)); pre = [first exposure - 14 days, first exposure) */
  SELECT
    e.unit_id,
    MAX(1) FILTER(WHERE
      (
        s.event_name = 'visited_signup'
      ) AND s.ts >= e.first_exposure_at) AS visited_signup, /* metric visited_signup: flag, post window */
    MAX(1) FILTER(WHERE
      (
        s.event_name = 'visited_signup'
      ) AND s.ts < e.first_exposure_at) AS visited_signup__pre, /* metric visited_signup: flag, pre window */
    BIT_COUNT(
      BIT_OR(
        CAST(1 AS BIGINT) << DATE_DIFF('DAY', CAST('2026-10-01' AS DATE), CAST(s.ts AS DATE))
      ) FILTER(WHERE
        (
          s.event_name = 'session_start'
        ) AND s.ts >= e.first_exposure_at)
    ) AS dau, /* metric dau: distinct_days, post window */
    BIT_COUNT(
      BIT_OR(
        CAST(1 AS BIGINT) << DATE_DIFF('DAY', CAST('2026-10-01' AS DATE), CAST(s.ts AS DATE))
      ) FILTER(WHERE
        (
          s.event_name = 'session_start'
        ) AND s.ts < e.first_exposure_at)
    ) AS dau__pre, /* metric dau: distinct_days, pre window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'signup_success'
      ) AND s.ts >= e.first_exposure_at) AS signups, /* metric signups: count, post window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'signup_success'
      ) AND s.ts < e.first_exposure_at) AS signups__pre, /* metric signups: count, pre window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'page_view'
      ) AND s.ts >= e.first_exposure_at) AS pages_per_session__num, /* metric page_views: count, post window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'page_view'
      ) AND s.ts < e.first_exposure_at) AS pages_per_session__num__pre, /* metric page_views: count, pre window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'session_start'
      ) AND s.ts >= e.first_exposure_at) AS pages_per_session__den, /* metric sessions: count, post window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'session_start'
      ) AND s.ts < e.first_exposure_at) AS pages_per_session__den__pre, /* metric sessions: count, pre window */
    SUM(s.value) FILTER(WHERE
      (
        s.event_name = 'purchase'
      ) AND s.ts >= e.first_exposure_at) AS avg_order_value, /* metric avg_order_value: sum, post window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'purchase'
      ) AND s.ts >= e.first_exposure_at) AS avg_order_value__den, /* metric avg_order_value: count, post window */
    SUM(s.value) FILTER(WHERE
      (
        s.event_name = 'purchase'
      ) AND s.ts < e.first_exposure_at) AS avg_order_value__pre, /* metric avg_order_value: sum, pre window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'purchase'
      ) AND s.ts < e.first_exposure_at) AS avg_order_value__pre_den, /* metric avg_order_value: count, pre window */
    BIT_COUNT(
      BIT_OR(
        CAST(1 AS BIGINT) << DATE_DIFF('DAY', CAST('2026-10-01' AS DATE), CAST(s.ts AS DATE))
      ) FILTER(WHERE
        (
          s.event_name = 'session_start'
        ) AND s.ts >= e.first_exposure_at)
    ) AS active_days, /* metric active_days: distinct_days, post window */
    BIT_COUNT(
      BIT_OR(
        CAST(1 AS BIGINT) << DATE_DIFF('DAY', CAST('2026-10-01' AS DATE), CAST(s.ts AS DATE))
      ) FILTER(WHERE
        (
          s.event_name = 'session_start'
        ) AND s.ts < e.first_exposure_at)
    ) AS active_days__pre, /* metric active_days: distinct_days, pre window */
    MAX(1) FILTER(WHERE
      (
        s.event_name = 'session_start'
      )
      AND s.ts >= e.first_exposure_at + INTERVAL '1' DAY
      AND s.ts < e.first_exposure_at + INTERVAL '2' DAY) AS day1_return, /* metric day1_return: flag, post window */
    MAX(1) FILTER(WHERE
      (
        s.event_name = 'session_start'
      )
      AND s.ts >= e.first_exposure_at + INTERVAL '1' DAY
      AND s.ts < e.first_exposure_at + INTERVAL '2' DAY) AS day1_return__den, /* metric day1_return: flag, post window */
    MAX(1) FILTER(WHERE
      (
        s.event_name = 'session_start'
      ) AND s.ts < e.first_exposure_at) AS day1_return__pre, /* metric day1_return: flag, pre window */
    MIN(s.ts) FILTER(WHERE
      (
        s.event_name = 'visited_signup'
      ) AND s.ts >= e.first_exposure_at) AS signup_funnel__visited, /* metric signup_funnel: first_ts, post window */
    MIN(s.ts) FILTER(WHERE
      (
        s.event_name = 'signup_success'
      ) AND s.ts >= e.first_exposure_at) AS signup_funnel__signed_up, /* metric signup_funnel: first_ts, post window */
    COUNT(DISTINCT s.event_name) FILTER(WHERE
      s.ts >= e.first_exposure_at) AS event_types_used, /* metric event_types_used: count_distinct, post window */
    COUNT(DISTINCT s.event_name) FILTER(WHERE
      s.ts < e.first_exposure_at) AS event_types_used__pre, /* metric event_types_used: count_distinct, pre window */
    SUM(s.value) FILTER(WHERE
      (
        s.event_name = 'purchase'
      ) AND s.ts >= e.first_exposure_at) AS revenue, /* metric revenue: sum, post window */
    SUM(s.value) FILTER(WHERE
      (
        s.event_name = 'purchase'
      ) AND s.ts < e.first_exposure_at) AS revenue__pre, /* metric revenue: sum, pre window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'api_success'
      ) AND s.ts >= e.first_exposure_at) AS api_success_rate__num, /* metric api_successes: count, post window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'api_success'
      ) AND s.ts < e.first_exposure_at) AS api_success_rate__num__pre, /* metric api_successes: count, pre window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'api_request'
      ) AND s.ts >= e.first_exposure_at) AS api_success_rate__den, /* metric api_requests: count, post window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'api_request'
      ) AND s.ts < e.first_exposure_at) AS api_success_rate__den__pre /* metric api_requests: count, pre window */
  FROM __wn_stage_exposures AS e
  JOIN (
    SELECT
      *
    FROM wn.stg_events
  ) AS s
    ON s.user_id = e.unit_id
  WHERE
    s.ts >= CAST('2026-10-01 00:00:00' AS TIMESTAMP)
    AND s.ts < CAST('2026-10-30 00:00:00' AS TIMESTAMP)
    AND s.ts >= e.first_exposure_at - INTERVAL '14' DAY
  GROUP BY
    e.unit_id
), unit_metrics AS (
  /* plan: unit metrics of experiment 'button_color_v3': every exposed unit, one column per unit measure */
  /* units without source rows get 0; daily_participation divides active days by days in the window */
  SELECT
    'button_color_v3' AS experiment,
    'user_id' AS unit_type,
    e.unit_id,
    e.variant,
    e.first_exposure_at,
    e.exposure_count,
    e.country,
    GREATEST(DATE_DIFF('DAY', CAST(e.first_exposure_at AS DATE), CAST('2026-10-30' AS DATE)), 1) AS post_days,
    CAST(COALESCE(s0.visited_signup, 0) AS DOUBLE) AS visited_signup,
    CAST(COALESCE(s0.visited_signup__pre, 0) AS DOUBLE) AS visited_signup__pre,
    CAST(COALESCE(s0.dau, 0) AS DOUBLE) / GREATEST(DATE_DIFF('DAY', CAST(e.first_exposure_at AS DATE), CAST('2026-10-30' AS DATE)), 1) AS dau,
    CAST(COALESCE(s0.dau__pre, 0) AS DOUBLE) / GREATEST(
      DATE_DIFF(
        'DAY',
        CAST(e.first_exposure_at - INTERVAL '14' DAY AS DATE),
        CAST(e.first_exposure_at AS DATE)
      ) + CASE
        WHEN CAST(CAST(e.first_exposure_at AS DATE) AS TIMESTAMP) = e.first_exposure_at
        THEN 0
        ELSE 1
      END,
      1
    ) AS dau__pre,
    CAST(COALESCE(s0.signups, 0) AS DOUBLE) AS signups,
    CAST(COALESCE(s0.signups__pre, 0) AS DOUBLE) AS signups__pre,
    CAST(COALESCE(s0.pages_per_session__num, 0) AS DOUBLE) AS pages_per_session__num,
    CAST(COALESCE(s0.pages_per_session__num__pre, 0) AS DOUBLE) AS pages_per_session__num__pre,
    CAST(COALESCE(s0.pages_per_session__den, 0) AS DOUBLE) AS pages_per_session__den,
    CAST(COALESCE(s0.pages_per_session__den__pre, 0) AS DOUBLE) AS pages_per_session__den__pre,
    CAST(COALESCE(s0.avg_order_value, 0) AS DOUBLE) AS avg_order_value,
    CAST(COALESCE(s0.avg_order_value__den, 0) AS DOUBLE) AS avg_order_value__den,
    CAST(COALESCE(s0.avg_order_value__pre, 0) AS DOUBLE) AS avg_order_value__pre,
    CAST(COALESCE(s0.avg_order_value__pre_den, 0) AS DOUBLE) AS avg_order_value__pre_den,
    CAST(COALESCE(s0.active_days, 0) AS DOUBLE) AS active_days,
    CAST(COALESCE(s0.active_days__pre, 0) AS DOUBLE) AS active_days__pre,
    CASE
      WHEN e.first_exposure_at + INTERVAL '2' DAY <= CAST('2026-10-30 00:00:00' AS TIMESTAMP)
      THEN CAST(COALESCE(s0.day1_return, 0) AS DOUBLE)
      ELSE CAST(0 AS DOUBLE)
    END AS day1_return,
    CAST(CASE
      WHEN e.first_exposure_at + INTERVAL '2' DAY <= CAST('2026-10-30 00:00:00' AS TIMESTAMP)
      THEN 1
      ELSE 0
    END AS DOUBLE) AS day1_return__den,
    CASE
      WHEN e.first_exposure_at + INTERVAL '2' DAY <= CAST('2026-10-30 00:00:00' AS TIMESTAMP)
      THEN CAST(COALESCE(s0.day1_return__pre, 0) AS DOUBLE)
      ELSE CAST(0 AS DOUBLE)
    END AS day1_return__pre,
    CAST(CASE WHEN NOT s0.signup_funnel__visited IS NULL THEN 1 ELSE 0 END AS DOUBLE) AS signup_funnel__visited,
    CAST(CASE
      WHEN NOT s0.signup_funnel__visited IS NULL
      AND NOT s0.signup_funnel__signed_up IS NULL
      AND s0.signup_funnel__signed_up >= s0.signup_funnel__visited
      AND s0.signup_funnel__signed_up < s0.signup_funnel__visited + INTERVAL '86400' SECOND
      THEN 1
      ELSE 0
    END AS DOUBLE) AS signup_funnel__signed_up,
    CAST(COALESCE(s0.event_types_used, 0) AS DOUBLE) AS event_types_used,
    CAST(COALESCE(s0.event_types_used__pre, 0) AS DOUBLE) AS event_types_used__pre,
    CAST(COALESCE(s0.revenue, 0) AS DOUBLE) AS revenue,
    CAST(COALESCE(s0.revenue__pre, 0) AS DOUBLE) AS revenue__pre,
    CAST(COALESCE(s0.api_success_rate__num, 0) AS DOUBLE) AS api_success_rate__num,
    CAST(COALESCE(s0.api_success_rate__num__pre, 0) AS DOUBLE) AS api_success_rate__num__pre,
    CAST(COALESCE(s0.api_success_rate__den, 0) AS DOUBLE) AS api_success_rate__den,
    CAST(COALESCE(s0.api_success_rate__den__pre, 0) AS DOUBLE) AS api_success_rate__den__pre
  FROM __wn_stage_exposures AS e
  LEFT JOIN __wn_scan__events AS s0
    ON s0.unit_id = e.unit_id
), analysed AS (
  SELECT
    *
  FROM unit_metrics
  WHERE
    variant IN ('blue', 'red', 'green', 'orange')
), caps AS (
  /* winsorization caps on pooled unit values */
  SELECT
    QUANTILE_CONT(revenue, 0.999) AS cap11_y_hi,
    QUANTILE_CONT(revenue__pre, 0.999) AS cap11_x_hi
  FROM analysed
), top_0 AS (
  /* slices of country: the 4 values with the most units with at least 500 units; the others are '(other)' */
  SELECT
    COALESCE(CAST(country AS TEXT), '(null)') AS value,
    COUNT(*) AS units
  FROM analysed
  GROUP BY
    COALESCE(CAST(country AS TEXT), '(null)')
  HAVING
    COUNT(*) >= 500
  ORDER BY
    units DESC,
    value
  LIMIT 4
), measured AS (
  SELECT
    analysed.variant,
    COALESCE(top_0.value, '(other)') AS country,
    analysed.visited_signup AS m0_y,
    analysed.visited_signup__pre AS m0_x,
    analysed.dau AS m1_y,
    analysed.dau__pre AS m1_x,
    analysed.signups AS m2_y,
    analysed.signups__pre AS m2_x,
    analysed.pages_per_session__num AS m3_y,
    analysed.pages_per_session__den AS m3_d,
    analysed.pages_per_session__num__pre AS m3_x,
    analysed.pages_per_session__den__pre AS m3_xm,
    analysed.avg_order_value AS m4_y,
    analysed.avg_order_value__den AS m4_d,
    analysed.avg_order_value__pre AS m4_x,
    analysed.avg_order_value__pre_den AS m4_xm,
    analysed.active_days AS m5_y,
    analysed.active_days__pre AS m5_x,
    analysed.day1_return AS m6_y,
    analysed.day1_return__den AS m6_d,
    analysed.day1_return__pre AS m6_x,
    analysed.day1_return__den AS m6_xm,
    analysed.signup_funnel__signed_up AS m7_y,
    analysed.signup_funnel__visited AS m8_y,
    analysed.signup_funnel__signed_up AS m9_y,
    analysed.signup_funnel__visited AS m9_d,
    analysed.event_types_used AS m10_y,
    analysed.event_types_used__pre AS m10_x,
    LEAST(analysed.revenue, caps.cap11_y_hi) AS m11_y,
    LEAST(analysed.revenue__pre, caps.cap11_x_hi) AS m11_x,
    analysed.api_success_rate__num AS m12_y,
    analysed.api_success_rate__den AS m12_d,
    analysed.api_success_rate__num__pre AS m12_x,
    analysed.api_success_rate__den__pre AS m12_xm
  FROM analysed
  CROSS JOIN caps
  LEFT JOIN top_0
    ON top_0.value = COALESCE(CAST(analysed.country AS TEXT), '(null)')
), __wn_q0_top_0 AS (
  /* slices of country: the 4 values with the most units with at least 500 units; the others are '(other)' */
  SELECT
    COALESCE(CAST(country AS TEXT), '(null)') AS value,
    COUNT(*) AS units
  FROM __wn_stage_exposures
  WHERE
    variant IN ('blue', 'red', 'green', 'orange')
  GROUP BY
    COALESCE(CAST(country AS TEXT), '(null)')
  HAVING
    COUNT(*) >= 500
  ORDER BY
    units DESC,
    value
  LIMIT 4
), __wn_q0_units AS (
  /* the analysed units, their slices of country limited to the largest values */
  SELECT
    e.unit_id,
    e.variant,
    e.first_exposure_at,
    COALESCE(__wn_q0_top_0.value, '(other)') AS country
  FROM __wn_stage_exposures AS e
  LEFT JOIN __wn_q0_top_0
    ON __wn_q0_top_0.value = COALESCE(CAST(e.country AS TEXT), '(null)')
  WHERE
    e.variant IN ('blue', 'red', 'green', 'orange')
), __wn_q0_events AS (
  SELECT
    e.unit_id,
    e.variant,
    e.country,
    CAST(s.value AS DOUBLE) AS v
  FROM __wn_q0_units AS e
  JOIN (
    SELECT
      *
    FROM wn.stg_events
  ) AS s
    ON s.user_id = e.unit_id
  WHERE
    s.ts >= CAST('2026-10-15 00:00:00' AS TIMESTAMP)
    AND s.ts < CAST('2026-10-30 00:00:00' AS TIMESTAMP)
    AND (
      s.event_name = 'purchase'
    )
    AND s.ts >= e.first_exposure_at
    AND NOT s.value IS NULL
), __wn_q0_sliced AS (
  /* slice 0: overall; slice i: the i-th dimension, by its value at first exposure */
  SELECT
    0 AS slice_id,
    CAST('' AS TEXT) AS slice_value,
    variant,
    unit_id,
    v
  FROM __wn_q0_events
  UNION ALL
  SELECT
    1,
    COALESCE(country, '(null)'),
    variant,
    unit_id,
    v
  FROM __wn_q0_events
), __wn_q0_ranked AS (
  SELECT
    slice_id,
    slice_value,
    variant,
    unit_id,
    v,
    ROW_NUMBER() OVER (PARTITION BY slice_id, slice_value, variant ORDER BY v) AS rk,
    COUNT(*) OVER (PARTITION BY slice_id, slice_value, variant) AS events
  FROM __wn_q0_sliced
), __wn_q0_point AS (
  /* Q(p): the two order statistics around h = (N - 1) * p */
  SELECT
    r.slice_id,
    r.slice_value,
    r.variant,
    MAX(r.events) AS events,
    MAX(
      CASE WHEN r.rk = FLOOR((
        r.events - 1
      ) * CAST(0.5 AS DOUBLE)) + 1 THEN r.v END
    ) + MAX(
      (
        r.events - 1
      ) * CAST(0.5 AS DOUBLE) - FLOOR((
        r.events - 1
      ) * CAST(0.5 AS DOUBLE))
    ) * (
      COALESCE(
        MAX(
          CASE WHEN r.rk = FLOOR((
            r.events - 1
          ) * CAST(0.5 AS DOUBLE)) + 2 THEN r.v END
        ),
        MAX(
          CASE WHEN r.rk = FLOOR((
            r.events - 1
          ) * CAST(0.5 AS DOUBLE)) + 1 THEN r.v END
        )
      ) - MAX(
        CASE WHEN r.rk = FLOOR((
          r.events - 1
        ) * CAST(0.5 AS DOUBLE)) + 1 THEN r.v END
      )
    ) AS quantile
  FROM __wn_q0_ranked AS r
  WHERE
    r.rk BETWEEN FLOOR((
      r.events - 1
    ) * CAST(0.5 AS DOUBLE)) + 1 AND FLOOR((
      r.events - 1
    ) * CAST(0.5 AS DOUBLE)) + 2
  GROUP BY
    r.slice_id,
    r.slice_value,
    r.variant
), __wn_q0_per_unit AS (
  /* per unit: its events, and those at or below Q(p) */
  SELECT
    r.slice_id,
    r.slice_value,
    r.variant,
    r.unit_id,
    CAST(COUNT(*) AS DOUBLE) AS n_events,
    CAST(SUM(CASE WHEN r.v <= pt.quantile THEN 1 ELSE 0 END) AS DOUBLE) AS below
  FROM __wn_q0_ranked AS r
  JOIN __wn_q0_point AS pt
    ON pt.slice_id = r.slice_id
    AND pt.slice_value = r.slice_value
    AND pt.variant = r.variant
  GROUP BY
    r.slice_id,
    r.slice_value,
    r.variant,
    r.unit_id
), __wn_q0_share AS (
  /* F = sum(below) / sum(events): the ratio's sufficient statistics over units */
  SELECT
    slice_id,
    slice_value,
    variant,
    SUM(below) AS below_sum,
    SUM(below * below) AS below_sum_sq,
    SUM(n_events) AS event_sum,
    SUM(n_events * n_events) AS event_sum_sq,
    SUM(below * n_events) AS below_event_sum
  FROM __wn_q0_per_unit
  GROUP BY
    slice_id,
    slice_value,
    variant
), __wn_q0_exposed AS (
  /* every analysed unit counts, those without events too (n of the delta method) */
  SELECT
    0 AS slice_id,
    CAST('' AS TEXT) AS slice_value,
    variant,
    COUNT(*) AS units
  FROM __wn_q0_units
  GROUP BY
    variant
  UNION ALL
  SELECT
    1,
    COALESCE(country, '(null)'),
    variant,
    COUNT(*)
  FROM __wn_q0_units
  GROUP BY
    COALESCE(country, '(null)'),
    variant
), __wn_q0_spread AS (
  /* sigma_F^2 = K / (K - 1) * sum((below - F * events)^2) / sum(events)^2 over the K units */
  SELECT
    f.slice_id,
    f.slice_value,
    f.variant,
    pt.events,
    CASE
      WHEN NOT f.sigma IS NULL
      THEN GREATEST(CAST(0.5 AS DOUBLE) - CAST(1.9599639845400536 AS DOUBLE) * f.sigma, 0)
    END AS f_lower, /* no interval from one unit */
    CASE
      WHEN NOT f.sigma IS NULL
      THEN LEAST(CAST(0.5 AS DOUBLE) + CAST(1.9599639845400536 AS DOUBLE) * f.sigma, 1)
    END AS f_upper
  FROM (
    SELECT
      sh.slice_id,
      sh.slice_value,
      sh.variant,
      CASE
        WHEN x.units > 1 AND sh.event_sum > 0
        THEN SQRT(
          GREATEST(
            (
              sh.below_sum_sq - 2 * (
                sh.below_sum / sh.event_sum
              ) * sh.below_event_sum + (
                sh.below_sum / sh.event_sum
              ) * (
                sh.below_sum / sh.event_sum
              ) * sh.event_sum_sq
            ) * x.units / (
              (
                x.units - 1
              ) * sh.event_sum * sh.event_sum
            ),
            0
          )
        )
      END AS sigma
    FROM __wn_q0_share AS sh
    JOIN __wn_q0_exposed AS x
      ON x.slice_id = sh.slice_id
      AND x.slice_value = sh.slice_value
      AND x.variant = sh.variant
  ) AS f
  JOIN __wn_q0_point AS pt
    ON pt.slice_id = f.slice_id
    AND pt.slice_value = f.slice_value
    AND pt.variant = f.variant
), __wn_q0_bounds AS (
  /* Q(p - z * sigma_F) and Q(p + z * sigma_F), interpolated as Q(p) */
  SELECT
    r.slice_id,
    r.slice_value,
    r.variant,
    MAX(CASE WHEN r.rk = FLOOR((
      r.events - 1
    ) * b.f_lower) + 1 THEN r.v END) + MAX((
      r.events - 1
    ) * b.f_lower - FLOOR((
      r.events - 1
    ) * b.f_lower)) * (
      COALESCE(
        MAX(CASE WHEN r.rk = FLOOR((
          r.events - 1
        ) * b.f_lower) + 2 THEN r.v END),
        MAX(CASE WHEN r.rk = FLOOR((
          r.events - 1
        ) * b.f_lower) + 1 THEN r.v END)
      ) - MAX(CASE WHEN r.rk = FLOOR((
        r.events - 1
      ) * b.f_lower) + 1 THEN r.v END)
    ) AS quantile_lower,
    MAX(CASE WHEN r.rk = FLOOR((
      r.events - 1
    ) * b.f_upper) + 1 THEN r.v END) + MAX((
      r.events - 1
    ) * b.f_upper - FLOOR((
      r.events - 1
    ) * b.f_upper)) * (
      COALESCE(
        MAX(CASE WHEN r.rk = FLOOR((
          r.events - 1
        ) * b.f_upper) + 2 THEN r.v END),
        MAX(CASE WHEN r.rk = FLOOR((
          r.events - 1
        ) * b.f_upper) + 1 THEN r.v END)
      ) - MAX(CASE WHEN r.rk = FLOOR((
        r.events - 1
      ) * b.f_upper) + 1 THEN r.v END)
    ) AS quantile_upper
  FROM __wn_q0_ranked AS r
  JOIN __wn_q0_spread AS b
    ON b.slice_id = r.slice_id
    AND b.slice_value = r.slice_value
    AND b.variant = r.variant
  WHERE
    r.rk BETWEEN FLOOR((
      r.events - 1
    ) * b.f_lower) + 1 AND FLOOR((
      r.events - 1
    ) * b.f_lower) + 2
    OR r.rk BETWEEN FLOOR((
      r.events - 1
    ) * b.f_upper) + 1 AND FLOOR((
      r.events - 1
    ) * b.f_upper) + 2
  GROUP BY
    r.slice_id,
    r.slice_value,
    r.variant
), __wn_aggregates AS (
  SELECT
    variant,
    CASE WHEN GROUPING(country) = 0 THEN 'country' END AS dimension,
    CASE WHEN GROUPING(country) = 0 THEN COALESCE(country, '(null)') END AS dimension_value,
    COUNT(*) AS n, /* metric visited_signup (conversion, primary) */
    SUM(m0_y) AS visited_signup__sum,
    SUM(m0_y * m0_y) AS visited_signup__sum_sq,
    SUM(m0_x) AS visited_signup__pre_sum,
    SUM(m0_x * m0_x) AS visited_signup__pre_sum_sq,
    SUM(m0_y * m0_x) AS visited_signup__sum_cross, /* metric dau (daily_participation, primary) */
    SUM(m1_y) AS dau__sum,
    SUM(m1_y * m1_y) AS dau__sum_sq,
    SUM(m1_x) AS dau__pre_sum,
    SUM(m1_x * m1_x) AS dau__pre_sum_sq,
    SUM(m1_y * m1_x) AS dau__sum_cross, /* metric signups (count, secondary) */
    SUM(m2_y) AS signups__sum,
    SUM(m2_y * m2_y) AS signups__sum_sq,
    SUM(m2_x) AS signups__pre_sum,
    SUM(m2_x * m2_x) AS signups__pre_sum_sq,
    SUM(m2_y * m2_x) AS signups__sum_cross, /* metric pages_per_session (ratio, secondary) */
    SUM(m3_y) AS pages_per_session__sum,
    SUM(m3_y * m3_y) AS pages_per_session__sum_sq,
    SUM(m3_d) AS pages_per_session__den_sum,
    SUM(m3_d * m3_d) AS pages_per_session__den_sum_sq,
    SUM(m3_y * m3_d) AS pages_per_session__num_den_sum,
    SUM(m3_x) AS pages_per_session__pre_sum,
    SUM(m3_x * m3_x) AS pages_per_session__pre_sum_sq,
    SUM(m3_y * m3_x) AS pages_per_session__sum_cross,
    SUM(m3_xm) AS pages_per_session__pre_den_sum,
    SUM(m3_xm * m3_xm) AS pages_per_session__pre_den_sum_sq,
    SUM(m3_x * m3_xm) AS pages_per_session__pre_num_den_sum,
    SUM(m3_y * m3_xm) AS pages_per_session__num_pre_den_sum,
    SUM(m3_d * m3_x) AS pages_per_session__den_pre_sum,
    SUM(m3_d * m3_xm) AS pages_per_session__den_pre_den_sum, /* metric avg_order_value (mean, secondary) */
    SUM(m4_y) AS avg_order_value__sum,
    SUM(m4_y * m4_y) AS avg_order_value__sum_sq,
    SUM(m4_d) AS avg_order_value__den_sum,
    SUM(m4_d * m4_d) AS avg_order_value__den_sum_sq,
    SUM(m4_y * m4_d) AS avg_order_value__num_den_sum,
    SUM(m4_x) AS avg_order_value__pre_sum,
    SUM(m4_x * m4_x) AS avg_order_value__pre_sum_sq,
    SUM(m4_y * m4_x) AS avg_order_value__sum_cross,
    SUM(m4_xm) AS avg_order_value__pre_den_sum,
    SUM(m4_xm * m4_xm) AS avg_order_value__pre_den_sum_sq,
    SUM(m4_x * m4_xm) AS avg_order_value__pre_num_den_sum,
    SUM(m4_y * m4_xm) AS avg_order_value__num_pre_den_sum,
    SUM(m4_d * m4_x) AS avg_order_value__den_pre_sum,
    SUM(m4_d * m4_xm) AS avg_order_value__den_pre_den_sum, /* metric active_days (active_days, secondary) */
    SUM(m5_y) AS active_days__sum,
    SUM(m5_y * m5_y) AS active_days__sum_sq,
    SUM(m5_x) AS active_days__pre_sum,
    SUM(m5_x * m5_x) AS active_days__pre_sum_sq,
    SUM(m5_y * m5_x) AS active_days__sum_cross, /* metric day1_return (retention, secondary) */
    SUM(m6_y) AS day1_return__sum,
    SUM(m6_y * m6_y) AS day1_return__sum_sq,
    SUM(m6_d) AS day1_return__den_sum,
    SUM(m6_d * m6_d) AS day1_return__den_sum_sq,
    SUM(m6_y * m6_d) AS day1_return__num_den_sum,
    SUM(m6_x) AS day1_return__pre_sum,
    SUM(m6_x * m6_x) AS day1_return__pre_sum_sq,
    SUM(m6_y * m6_x) AS day1_return__sum_cross,
    SUM(m6_xm) AS day1_return__pre_den_sum,
    SUM(m6_xm * m6_xm) AS day1_return__pre_den_sum_sq,
    SUM(m6_x * m6_xm) AS day1_return__pre_num_den_sum,
    SUM(m6_y * m6_xm) AS day1_return__num_pre_den_sum,
    SUM(m6_d * m6_x) AS day1_return__den_pre_sum,
    SUM(m6_d * m6_xm) AS day1_return__den_pre_den_sum, /* metric signup_funnel (funnel, secondary) */
    SUM(m7_y) AS signup_funnel__sum,
    SUM(m7_y * m7_y) AS signup_funnel__sum_sq, /* metric signup_funnel__visited (funnel_step, secondary) */
    SUM(m8_y) AS signup_funnel__visited__sum,
    SUM(m8_y * m8_y) AS signup_funnel__visited__sum_sq, /* metric signup_funnel__signed_up (funnel_step, secondary) */
    SUM(m9_y) AS signup_funnel__signed_up__sum,
    SUM(m9_y * m9_y) AS signup_funnel__signed_up__sum_sq,
    SUM(m9_d) AS signup_funnel__signed_up__den_sum,
    SUM(m9_d * m9_d) AS signup_funnel__signed_up__den_sum_sq,
    SUM(m9_y * m9_d) AS signup_funnel__signed_up__num_den_sum, /* metric event_types_used (count_distinct, secondary) */
    SUM(m10_y) AS event_types_used__sum,
    SUM(m10_y * m10_y) AS event_types_used__sum_sq,
    SUM(m10_x) AS event_types_used__pre_sum,
    SUM(m10_x * m10_x) AS event_types_used__pre_sum_sq,
    SUM(m10_y * m10_x) AS event_types_used__sum_cross, /* metric revenue (sum, guardrail) */
    SUM(m11_y) AS revenue__sum,
    SUM(m11_y * m11_y) AS revenue__sum_sq,
    SUM(m11_x) AS revenue__pre_sum,
    SUM(m11_x * m11_x) AS revenue__pre_sum_sq,
    SUM(m11_y * m11_x) AS revenue__sum_cross, /* metric api_success_rate (ratio, guardrail) */
    SUM(m12_y) AS api_success_rate__sum,
    SUM(m12_y * m12_y) AS api_success_rate__sum_sq,
    SUM(m12_d) AS api_success_rate__den_sum,
    SUM(m12_d * m12_d) AS api_success_rate__den_sum_sq,
    SUM(m12_y * m12_d) AS api_success_rate__num_den_sum,
    SUM(m12_x) AS api_success_rate__pre_sum,
    SUM(m12_x * m12_x) AS api_success_rate__pre_sum_sq,
    SUM(m12_y * m12_x) AS api_success_rate__sum_cross,
    SUM(m12_xm) AS api_success_rate__pre_den_sum,
    SUM(m12_xm * m12_xm) AS api_success_rate__pre_den_sum_sq,
    SUM(m12_x * m12_xm) AS api_success_rate__pre_num_den_sum,
    SUM(m12_y * m12_xm) AS api_success_rate__num_pre_den_sum,
    SUM(m12_d * m12_x) AS api_success_rate__den_pre_sum,
    SUM(m12_d * m12_xm) AS api_success_rate__den_pre_den_sum
  FROM measured
  GROUP BY
    GROUPING SETS (
      (
        variant
      ),
      (variant, country)
    )
), __wn_q0 AS (
  SELECT
    x.variant,
    CASE x.slice_id WHEN 1 THEN 'country' END AS dimension,
    CASE WHEN x.slice_id > 0 THEN x.slice_value END AS dimension_value,
    x.units AS n,
    sh.below_sum AS median_order_value__sum, /* metric median_order_value (percentile 0.5): share of events at or below the quantile, per unit */
    sh.below_sum_sq AS median_order_value__sum_sq,
    sh.event_sum AS median_order_value__den_sum,
    sh.event_sum_sq AS median_order_value__den_sum_sq,
    sh.below_event_sum AS median_order_value__num_den_sum,
    pt.quantile AS median_order_value__quantile,
    bd.quantile_lower AS median_order_value__quantile_lower,
    bd.quantile_upper AS median_order_value__quantile_upper
  FROM __wn_q0_exposed AS x
  LEFT JOIN __wn_q0_point AS pt
    ON pt.slice_id = x.slice_id
    AND pt.slice_value = x.slice_value
    AND pt.variant = x.variant
  LEFT JOIN __wn_q0_share AS sh
    ON sh.slice_id = x.slice_id
    AND sh.slice_value = x.slice_value
    AND sh.variant = x.variant
  LEFT JOIN __wn_q0_bounds AS bd
    ON bd.slice_id = x.slice_id
    AND bd.slice_value = x.slice_value
    AND bd.variant = x.variant
)
SELECT
  a.variant,
  a.dimension,
  a.dimension_value,
  a.n,
  a.visited_signup__sum,
  a.visited_signup__sum_sq,
  a.visited_signup__pre_sum,
  a.visited_signup__pre_sum_sq,
  a.visited_signup__sum_cross,
  a.dau__sum,
  a.dau__sum_sq,
  a.dau__pre_sum,
  a.dau__pre_sum_sq,
  a.dau__sum_cross,
  a.signups__sum,
  a.signups__sum_sq,
  a.signups__pre_sum,
  a.signups__pre_sum_sq,
  a.signups__sum_cross,
  a.pages_per_session__sum,
  a.pages_per_session__sum_sq,
  a.pages_per_session__den_sum,
  a.pages_per_session__den_sum_sq,
  a.pages_per_session__num_den_sum,
  a.pages_per_session__pre_sum,
  a.pages_per_session__pre_sum_sq,
  a.pages_per_session__sum_cross,
  a.pages_per_session__pre_den_sum,
  a.pages_per_session__pre_den_sum_sq,
  a.pages_per_session__pre_num_den_sum,
  a.pages_per_session__num_pre_den_sum,
  a.pages_per_session__den_pre_sum,
  a.pages_per_session__den_pre_den_sum,
  a.avg_order_value__sum,
  a.avg_order_value__sum_sq,
  a.avg_order_value__den_sum,
  a.avg_order_value__den_sum_sq,
  a.avg_order_value__num_den_sum,
  a.avg_order_value__pre_sum,
  a.avg_order_value__pre_sum_sq,
  a.avg_order_value__sum_cross,
  a.avg_order_value__pre_den_sum,
  a.avg_order_value__pre_den_sum_sq,
  a.avg_order_value__pre_num_den_sum,
  a.avg_order_value__num_pre_den_sum,
  a.avg_order_value__den_pre_sum,
  a.avg_order_value__den_pre_den_sum,
  a.active_days__sum,
  a.active_days__sum_sq,
  a.active_days__pre_sum,
  a.active_days__pre_sum_sq,
  a.active_days__sum_cross,
  a.day1_return__sum,
  a.day1_return__sum_sq,
  a.day1_return__den_sum,
  a.day1_return__den_sum_sq,
  a.day1_return__num_den_sum,
  a.day1_return__pre_sum,
  a.day1_return__pre_sum_sq,
  a.day1_return__sum_cross,
  a.day1_return__pre_den_sum,
  a.day1_return__pre_den_sum_sq,
  a.day1_return__pre_num_den_sum,
  a.day1_return__num_pre_den_sum,
  a.day1_return__den_pre_sum,
  a.day1_return__den_pre_den_sum,
  a.signup_funnel__sum,
  a.signup_funnel__sum_sq,
  a.signup_funnel__visited__sum,
  a.signup_funnel__visited__sum_sq,
  a.signup_funnel__signed_up__sum,
  a.signup_funnel__signed_up__sum_sq,
  a.signup_funnel__signed_up__den_sum,
  a.signup_funnel__signed_up__den_sum_sq,
  a.signup_funnel__signed_up__num_den_sum,
  a.event_types_used__sum,
  a.event_types_used__sum_sq,
  a.event_types_used__pre_sum,
  a.event_types_used__pre_sum_sq,
  a.event_types_used__sum_cross,
  a.revenue__sum,
  a.revenue__sum_sq,
  a.revenue__pre_sum,
  a.revenue__pre_sum_sq,
  a.revenue__sum_cross,
  a.api_success_rate__sum,
  a.api_success_rate__sum_sq,
  a.api_success_rate__den_sum,
  a.api_success_rate__den_sum_sq,
  a.api_success_rate__num_den_sum,
  a.api_success_rate__pre_sum,
  a.api_success_rate__pre_sum_sq,
  a.api_success_rate__sum_cross,
  a.api_success_rate__pre_den_sum,
  a.api_success_rate__pre_den_sum_sq,
  a.api_success_rate__pre_num_den_sum,
  a.api_success_rate__num_pre_den_sum,
  a.api_success_rate__den_pre_sum,
  a.api_success_rate__den_pre_den_sum,
  q0.median_order_value__sum,
  q0.median_order_value__sum_sq,
  q0.median_order_value__den_sum,
  q0.median_order_value__den_sum_sq,
  q0.median_order_value__num_den_sum,
  q0.median_order_value__quantile,
  q0.median_order_value__quantile_lower,
  q0.median_order_value__quantile_upper,
  CAST(NULL AS DATE) AS exposure_day
FROM __wn_aggregates AS a
LEFT JOIN __wn_q0 AS q0
  ON q0.variant IS NOT DISTINCT FROM a.variant
  AND q0.dimension IS NOT DISTINCT FROM a.dimension
  AND q0.dimension_value IS NOT DISTINCT FROM a.dimension_value
UNION ALL
SELECT
  e.variant,
  NULL,
  NULL,
  COUNT(*),
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  NULL,
  CAST(e.first_exposure_at AS DATE)
FROM __wn_stage_exposures AS e
GROUP BY
  e.variant,
  CAST(e.first_exposure_at AS DATE);

-- published view unit_metrics__button_color_v3
WITH assignments AS (
  SELECT
    src.user_id AS unit_id,
    COALESCE(CAST(src.group_name AS TEXT), '(null)') AS variant,
    src.ts AS exposed_at,
    src.country AS country
  FROM raw.exposures AS src
  WHERE
    src.experiment = 'button_color_v3'
    AND src.ts >= CAST('2026-10-15 00:00:00' AS TIMESTAMP)
    AND src.ts < CAST('2026-10-30 00:00:00' AS TIMESTAMP)
    AND NOT src.user_id IS NULL
), exposed_units AS (
  SELECT
    unit_id,
    CASE WHEN MIN(variant) = MAX(variant) THEN MIN(variant) ELSE '__multiple__' END AS variant,
    MIN(exposed_at) AS first_exposure_at,
    COUNT(*) AS exposure_count,
    ARG_MIN_NULL(CAST(country AS TEXT), exposed_at) AS country
  FROM assignments
  GROUP BY
    unit_id
), __wn_scan__events AS (
  /* plan: one scan of source 'events' joined once to the exposures; 29 unit columns */
  /* windows: post = [first exposure + start_day, min(analysis end, first exposure + end_day)); pre = [first exposure - 14 days, first exposure) */
  SELECT
    e.unit_id,
    MAX(1) FILTER(WHERE
      (
        s.event_name = 'visited_signup'
      ) AND s.ts >= e.first_exposure_at) AS visited_signup, /* metric visited_signup: flag, post window */
    MAX(1) FILTER(WHERE
      (
        s.event_name = 'visited_signup'
      ) AND s.ts < e.first_exposure_at) AS visited_signup__pre, /* metric visited_signup: flag, pre window */
    BIT_COUNT(
      BIT_OR(
        CAST(1 AS BIGINT) << DATE_DIFF('DAY', CAST('2026-10-01' AS DATE), CAST(s.ts AS DATE))
      ) FILTER(WHERE
        (
          s.event_name = 'session_start'
        ) AND s.ts >= e.first_exposure_at)
    ) AS dau, /* metric dau: distinct_days, post window */
    BIT_COUNT(
      BIT_OR(
        CAST(1 AS BIGINT) << DATE_DIFF('DAY', CAST('2026-10-01' AS DATE), CAST(s.ts AS DATE))
      ) FILTER(WHERE
        (
          s.event_name = 'session_start'
        ) AND s.ts < e.first_exposure_at)
    ) AS dau__pre, /* metric dau: distinct_days, pre window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'signup_success'
      ) AND s.ts >= e.first_exposure_at) AS signups, /* metric signups: count, post window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'signup_success'
      ) AND s.ts < e.first_exposure_at) AS signups__pre, /* metric signups: count, pre window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'page_view'
      ) AND s.ts >= e.first_exposure_at) AS pages_per_session__num, /* metric page_views: count, post window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'page_view'
      ) AND s.ts < e.first_exposure_at) AS pages_per_session__num__pre, /* metric page_views: count, pre window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'session_start'
      ) AND s.ts >= e.first_exposure_at) AS pages_per_session__den, /* metric sessions: count, post window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'session_start'
      ) AND s.ts < e.first_exposure_at) AS pages_per_session__den__pre, /* metric sessions: count, pre window */
    SUM(s.value) FILTER(WHERE
      (
        s.event_name = 'purchase'
      ) AND s.ts >= e.first_exposure_at) AS avg_order_value, /* metric avg_order_value: sum, post window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'purchase'
      ) AND s.ts >= e.first_exposure_at) AS avg_order_value__den, /* metric avg_order_value: count, post window */
    SUM(s.value) FILTER(WHERE
      (
        s.event_name = 'purchase'
      ) AND s.ts < e.first_exposure_at) AS avg_order_value__pre, /* metric avg_order_value: sum, pre window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'purchase'
      ) AND s.ts < e.first_exposure_at) AS avg_order_value__pre_den, /* metric avg_order_value: count, pre window */
    BIT_COUNT(
      BIT_OR(
        CAST(1 AS BIGINT) << DATE_DIFF('DAY', CAST('2026-10-01' AS DATE), CAST(s.ts AS DATE))
      ) FILTER(WHERE
        (
          s.event_name = 'session_start'
        ) AND s.ts >= e.first_exposure_at)
    ) AS active_days, /* metric active_days: distinct_days, post window */
    BIT_COUNT(
      BIT_OR(
        CAST(1 AS BIGINT) << DATE_DIFF('DAY', CAST('2026-10-01' AS DATE), CAST(s.ts AS DATE))
      ) FILTER(WHERE
        (
          s.event_name = 'session_start'
        ) AND s.ts < e.first_exposure_at)
    ) AS active_days__pre, /* metric active_days: distinct_days, pre window */
    MAX(1) FILTER(WHERE
      (
        s.event_name = 'session_start'
      )
      AND s.ts >= e.first_exposure_at + INTERVAL '1' DAY
      AND s.ts < e.first_exposure_at + INTERVAL '2' DAY) AS day1_return, /* metric day1_return: flag, post window */
    MAX(1) FILTER(WHERE
      (
        s.event_name = 'session_start'
      )
      AND s.ts >= e.first_exposure_at + INTERVAL '1' DAY
      AND s.ts < e.first_exposure_at + INTERVAL '2' DAY) AS day1_return__den, /* metric day1_return: flag, post window */
    MAX(1) FILTER(WHERE
      (
        s.event_name = 'session_start'
      ) AND s.ts < e.first_exposure_at) AS day1_return__pre, /* metric day1_return: flag, pre window */
    MIN(s.ts) FILTER(WHERE
      (
        s.event_name = 'visited_signup'
      ) AND s.ts >= e.first_exposure_at) AS signup_funnel__visited, /* metric signup_funnel: first_ts, post window */
    MIN(s.ts) FILTER(WHERE
      (
        s.event_name = 'signup_success'
      ) AND s.ts >= e.first_exposure_at) AS signup_funnel__signed_up, /* metric signup_funnel: first_ts, post window */
    COUNT(DISTINCT s.event_name) FILTER(WHERE
      s.ts >= e.first_exposure_at) AS event_types_used, /* metric event_types_used: count_distinct, post window */
    COUNT(DISTINCT s.event_name) FILTER(WHERE
      s.ts < e.first_exposure_at) AS event_types_used__pre, /* metric event_types_used: count_distinct, pre window */
    SUM(s.value) FILTER(WHERE
      (
        s.event_name = 'purchase'
      ) AND s.ts >= e.first_exposure_at) AS revenue, /* metric revenue: sum, post window */
    SUM(s.value) FILTER(WHERE
      (
        s.event_name = 'purchase'
      ) AND s.ts < e.first_exposure_at) AS revenue__pre, /* metric revenue: sum, pre window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'api_success'
      ) AND s.ts >= e.first_exposure_at) AS api_success_rate__num, /* metric api_successes: count, post window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'api_success'
      ) AND s.ts < e.first_exposure_at) AS api_success_rate__num__pre, /* metric api_successes: count, pre window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'api_request'
      ) AND s.ts >= e.first_exposure_at) AS api_success_rate__den, /* metric api_requests: count, post window */
    COUNT(*) FILTER(WHERE
      (
        s.event_name = 'api_request'
      ) AND s.ts < e.first_exposure_at) AS api_success_rate__den__pre /* metric api_requests: count, pre window */
  FROM exposed_units AS e
  JOIN (
    SELECT
      *
    FROM wn.stg_events
  ) AS s
    ON s.user_id = e.unit_id
  WHERE
    s.ts >= CAST('2026-10-01 00:00:00' AS TIMESTAMP)
    AND s.ts < CAST('2026-10-30 00:00:00' AS TIMESTAMP)
    AND s.ts >= e.first_exposure_at - INTERVAL '14' DAY
  GROUP BY
    e.unit_id
)
/* plan: unit metrics of experiment 'button_color_v3': every exposed unit, one column per unit measure */
/* units without source rows get 0; daily_participation divides active days by days in the window */
SELECT
  'button_color_v3' AS experiment,
  'user_id' AS unit_type,
  e.unit_id,
  e.variant,
  e.first_exposure_at,
  e.exposure_count,
  e.country,
  GREATEST(DATE_DIFF('DAY', CAST(e.first_exposure_at AS DATE), CAST('2026-10-30' AS DATE)), 1) AS post_days,
  CAST(COALESCE(s0.visited_signup, 0) AS DOUBLE) AS visited_signup,
  CAST(COALESCE(s0.visited_signup__pre, 0) AS DOUBLE) AS visited_signup__pre,
  CAST(COALESCE(s0.dau, 0) AS DOUBLE) / GREATEST(DATE_DIFF('DAY', CAST(e.first_exposure_at AS DATE), CAST('2026-10-30' AS DATE)), 1) AS dau,
  CAST(COALESCE(s0.dau__pre, 0) AS DOUBLE) / GREATEST(
    DATE_DIFF(
      'DAY',
      CAST(e.first_exposure_at - INTERVAL '14' DAY AS DATE),
      CAST(e.first_exposure_at AS DATE)
    ) + CASE
      WHEN CAST(CAST(e.first_exposure_at AS DATE) AS TIMESTAMP) = e.first_exposure_at
      THEN 0
      ELSE 1
    END,
    1
  ) AS dau__pre,
  CAST(COALESCE(s0.signups, 0) AS DOUBLE) AS signups,
  CAST(COALESCE(s0.signups__pre, 0) AS DOUBLE) AS signups__pre,
  CAST(COALESCE(s0.pages_per_session__num, 0) AS DOUBLE) AS pages_per_session__num,
  CAST(COALESCE(s0.pages_per_session__num__pre, 0) AS DOUBLE) AS pages_per_session__num__pre,
  CAST(COALESCE(s0.pages_per_session__den, 0) AS DOUBLE) AS pages_per_session__den,
  CAST(COALESCE(s0.pages_per_session__den__pre, 0) AS DOUBLE) AS pages_per_session__den__pre,
  CAST(COALESCE(s0.avg_order_value, 0) AS DOUBLE) AS avg_order_value,
  CAST(COALESCE(s0.avg_order_value__den, 0) AS DOUBLE) AS avg_order_value__den,
  CAST(COALESCE(s0.avg_order_value__pre, 0) AS DOUBLE) AS avg_order_value__pre,
  CAST(COALESCE(s0.avg_order_value__pre_den, 0) AS DOUBLE) AS avg_order_value__pre_den,
  CAST(COALESCE(s0.active_days, 0) AS DOUBLE) AS active_days,
  CAST(COALESCE(s0.active_days__pre, 0) AS DOUBLE) AS active_days__pre,
  CASE
    WHEN e.first_exposure_at + INTERVAL '2' DAY <= CAST('2026-10-30 00:00:00' AS TIMESTAMP)
    THEN CAST(COALESCE(s0.day1_return, 0) AS DOUBLE)
    ELSE CAST(0 AS DOUBLE)
  END AS day1_return,
  CAST(CASE
    WHEN e.first_exposure_at + INTERVAL '2' DAY <= CAST('2026-10-30 00:00:00' AS TIMESTAMP)
    THEN 1
    ELSE 0
  END AS DOUBLE) AS day1_return__den,
  CASE
    WHEN e.first_exposure_at + INTERVAL '2' DAY <= CAST('2026-10-30 00:00:00' AS TIMESTAMP)
    THEN CAST(COALESCE(s0.day1_return__pre, 0) AS DOUBLE)
    ELSE CAST(0 AS DOUBLE)
  END AS day1_return__pre,
  CAST(CASE WHEN NOT s0.signup_funnel__visited IS NULL THEN 1 ELSE 0 END AS DOUBLE) AS signup_funnel__visited,
  CAST(CASE
    WHEN NOT s0.signup_funnel__visited IS NULL
    AND NOT s0.signup_funnel__signed_up IS NULL
    AND s0.signup_funnel__signed_up >= s0.signup_funnel__visited
    AND s0.signup_funnel__signed_up < s0.signup_funnel__visited + INTERVAL '86400' SECOND
    THEN 1
    ELSE 0
  END AS DOUBLE) AS signup_funnel__signed_up,
  CAST(COALESCE(s0.event_types_used, 0) AS DOUBLE) AS event_types_used,
  CAST(COALESCE(s0.event_types_used__pre, 0) AS DOUBLE) AS event_types_used__pre,
  CAST(COALESCE(s0.revenue, 0) AS DOUBLE) AS revenue,
  CAST(COALESCE(s0.revenue__pre, 0) AS DOUBLE) AS revenue__pre,
  CAST(COALESCE(s0.api_success_rate__num, 0) AS DOUBLE) AS api_success_rate__num,
  CAST(COALESCE(s0.api_success_rate__num__pre, 0) AS DOUBLE) AS api_success_rate__num__pre,
  CAST(COALESCE(s0.api_success_rate__den, 0) AS DOUBLE) AS api_success_rate__den,
  CAST(COALESCE(s0.api_success_rate__den__pre, 0) AS DOUBLE) AS api_success_rate__den__pre
FROM exposed_units AS e
LEFT JOIN __wn_scan__events AS s0
  ON s0.unit_id = e.unit_id;
