"""Deterministic, vectorised generator of the demo warehouse (``raw.exposures``, ``raw.events``).

The data tells the story in :mod:`warehouse_native.demo.story`: 14 days of history, then the
``button_color_v3`` experiment (blue control, red lifts ``visited_signup``, green is neutral,
orange lowers revenue) and the ``show_new_homepage`` gate (``on`` adds page views), on users
whose latent activity drives their events before and after exposure (so CUPED helps).

How it is made (no per-event Python loops):

1. per user: latent activity (gamma), a log-trend, country, device, device id, variants;
2. per user x day (in fixed blocks of users): Poisson number of sessions;
3. per session: start time; sessions in an experiment's period log exposures (the user's
   first logged session is the first exposure); the sessions from the first exposure on
   carry the planted effects;
4. per session: page views, API requests/successes, signup visits/successes, purchases.

Same :class:`DemoConfig` -> byte-identical arrays (``numpy.random.default_rng`` seeded with
``SeedSequence([seed, stream, block])``; the block size is a constant, not a knob).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from . import story as S

DEMO_TABLES = ("raw.exposures", "raw.events")

_US_PER_SECOND = 1_000_000
_US_PER_DAY = 86_400 * _US_PER_SECOND
# Session starts are squeezed into [00:00, 23:20) so that every event of a session (at most
# 30 min + a signup after 5 min + API latency) stays on the session's day.
_LATEST_SESSION_START_S = 84_000.0
_BLOCK_USERS = 65_536  # part of the determinism contract: do not make it depend on the config

# RNG stream ids (SeedSequence entropy [seed, stream, block]).
_STREAM_USERS = 1
_STREAM_ASSIGN_EXPERIMENT = 2
_STREAM_ASSIGN_GATE = 3
_STREAM_SESSIONS = 4


@dataclass(frozen=True)
class DemoConfig:
    """Size and seed of the demo data.

    ``users``: generated users (about 76% get exposed to the experiment, 62% to the gate).
    ``days``: days of data from ``start`` (inclusive); the default 28 days from 2026-10-01
    cover 14 pre-experiment days and the experiment up to 2026-10-28 (the experiment is
    configured to end 2026-10-29; there is simply no data for its last day).
    ``events_per_user_day``: scale factor for activity (sessions and so every event type);
    1.0 gives about 1.4 events per user and day (0.79M events for the defaults). For
    benchmarks: 1M users x 28 days is about 40M events at 1.0, 20M at 0.5.
    ``experiment_days``: length of the button-colour experiment (inclusive of its last,
    data-less day); the benchmarks lengthen it to time daily runs over a long history.
    """

    users: int = 20_000
    days: int = 28
    seed: int = 7
    start: date = date(2026, 10, 1)
    events_per_user_day: float = 1.0
    experiment_days: int = S.EXPERIMENT_LENGTH_DAYS

    def __post_init__(self) -> None:
        def _int(name: str, lo: int, hi: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"DemoConfig.{name} must be an integer, got {v!r}")
            if not lo <= v <= hi:
                raise ValueError(f"DemoConfig.{name} must be between {lo:,} and {hi:,}, got {v:,}")

        _int("users", 100, 50_000_000)
        _int("days", 2, 3_660)
        _int("experiment_days", 1, 3_660)
        _int("seed", 0, 2**63 - 1)
        if isinstance(self.start, datetime) or not isinstance(self.start, date):
            raise ValueError(
                f"DemoConfig.start must be a datetime.date (not a datetime), got {self.start!r}"
            )
        e = self.events_per_user_day
        if isinstance(e, bool) or not isinstance(e, (int, float, np.integer, np.floating)):
            raise ValueError(f"DemoConfig.events_per_user_day must be a number, got {e!r}")
        if not (math.isfinite(e) and 0 < e <= 100):
            raise ValueError(
                f"DemoConfig.events_per_user_day must be > 0 and <= 100, got {e!r}"
            )

    # Windows (dates inclusive). With days <= 14 the periods move earlier so that they
    # still have data; with the defaults they are exactly 2026-10-15..29 and 2026-10-18..28.
    @property
    def end(self) -> date:
        """Last day with data (inclusive)."""
        return self.start + timedelta(days=self.days - 1)

    @property
    def experiment_start(self) -> date:
        return self.start + timedelta(days=min(S.EXPERIMENT_OFFSET_DAYS, self.days - 1))

    @property
    def experiment_end(self) -> date:
        return self.experiment_start + timedelta(days=self.experiment_days - 1)

    @property
    def gate_start(self) -> date:
        return self.start + timedelta(days=min(S.GATE_OFFSET_DAYS, self.days - 1))

    @property
    def gate_end(self) -> date:
        return self.gate_start + timedelta(days=S.GATE_LENGTH_DAYS - 1)


def _rng(seed: int, stream: int, block: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, block]))


def _group_rank(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a sorted key array: 0-based rank of each element inside its run, and run starts."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    new = np.empty(n, bool)
    new[0] = True
    np.not_equal(keys[1:], keys[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    lengths = np.diff(np.append(starts, n))
    return np.arange(n) - np.repeat(starts, lengths), starts


def _within(rng: np.random.Generator, base: np.ndarray, span_us: np.ndarray) -> np.ndarray:
    """base + uniform offset in [0, span)."""
    return base + (rng.random(len(base)) * span_us).astype(np.int64)


class _Users:
    """Per-user attributes (all users, global indices)."""

    def __init__(self, cfg: DemoConfig) -> None:
        n = cfg.users
        rng = _rng(cfg.seed, _STREAM_USERS)
        self.activity = rng.gamma(S.ACTIVITY_SHAPE, 1.0 / S.ACTIVITY_SHAPE, n)
        self.drift = rng.normal(0.0, S.ACTIVITY_DRIFT_SD, n)
        self.country = rng.choice(len(S.COUNTRIES), size=n, p=S.COUNTRY_SHARES).astype(np.int8)
        self.device = rng.choice(len(S.DEVICES), size=n, p=S.DEVICE_SHARES).astype(np.int8)
        self.multi_experiment = rng.random(n) < S.MULTI_EXPOSED_SHARE
        self.multi_gate = rng.random(n) < S.MULTI_EXPOSED_SHARE
        # Device ids: a seeded bijection of [0, 2**48) so they look random and never collide.
        mul = int(rng.integers(0, 2**46)) * 4 + 1  # odd -> invertible mod 2**48
        xor = int(rng.integers(0, 2**48))
        self._mul, self._xor = np.uint64(mul), np.uint64(xor)
        # Assignment: a fair multinomial draw per user with exactly the configured weights.
        self.variant = (
            _rng(cfg.seed, _STREAM_ASSIGN_EXPERIMENT)
            .choice(len(S.EXPERIMENT_VARIANTS), size=n, p=S.EXPERIMENT_WEIGHTS)
            .astype(np.int8)
        )
        self.gate_variant = (
            _rng(cfg.seed, _STREAM_ASSIGN_GATE)
            .choice(len(S.GATE_VARIANTS), size=n, p=S.GATE_WEIGHTS)
            .astype(np.int8)
        )

    def device_ids(self, index: np.ndarray) -> np.ndarray:
        """Device ids ('d' + 12 hex digits) for device indices (user i's main device is i;
        second devices are numbered from ``users`` on)."""
        mask = np.uint64(2**48 - 1)
        with np.errstate(over="ignore"):
            code = ((index.astype(np.uint64) * self._mul) & mask) ^ self._xor
        return np.array([f"d{c:012x}" for c in code.tolist()], dtype=object)


def _exposure_rows(
    rng: np.random.Generator,
    s_user: np.ndarray,
    s_ts: np.ndarray,
    s_day: np.ndarray,
    first_day: int,
    last_day: int,
    log_prob: float,
    n_users: int,
    start_us: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exposure rows from sessions (sorted by user, ts) in [first_day, last_day].

    Returns (session index of each logged row, exposure ts of each row, per-user start ts of
    the first exposed session or INT64_MAX)."""
    logged = (s_day >= first_day) & (s_day <= last_day) & (rng.random(len(s_user)) < log_prob)
    idx = np.flatnonzero(logged)
    rank, starts = _group_rank(s_user[idx])
    rows = idx[rank < S.MAX_EXPOSURE_ROWS]
    # The SDK logs the assignment 0.2-2 s before the app logs session_start (it is fetched at
    # launch), so every event of the exposing session is inside the analysis window.
    lead = (rng.uniform(0.2, 2.0, len(rows)) * _US_PER_SECOND).astype(np.int64)
    row_ts = np.maximum(s_ts[rows] - lead, start_us + s_day[rows] * _US_PER_DAY)
    first_session_ts = np.full(n_users, np.iinfo(np.int64).max, np.int64)
    first = idx[starts]
    first_session_ts[s_user[first]] = s_ts[first]
    return rows, row_ts, first_session_ts


def _block(cfg: DemoConfig, users: _Users, u0: int, u1: int, start_us: int) -> tuple[dict, dict]:
    rng = _rng(cfg.seed, _STREAM_SESSIONS, u0 // _BLOCK_USERS)
    nu, days = u1 - u0, cfg.days

    # --- sessions per user x day --------------------------------------------------------
    day = np.arange(days)
    weekday = np.array([(cfg.start + timedelta(days=int(d))).weekday() for d in day])
    day_factor = np.where(weekday >= 5, S.WEEKEND_FACTOR, 1.0)
    # Each user's activity drifts (log-linearly, by users.drift per 28 days) around the day
    # before the experiment starts; bounded to +-14 days so long configs do not explode.
    centre = min(S.EXPERIMENT_OFFSET_DAYS, days - 1) - 0.5
    trend = np.clip((day - centre) / 28.0, -0.5, 0.5)
    rate = np.exp(users.drift[u0:u1, None] * trend[None, :])
    rate *= (S.SESSIONS_PER_USER_DAY * cfg.events_per_user_day) * users.activity[u0:u1, None]
    rate *= day_factor[None, :]
    counts = rng.poisson(rate).ravel()
    del rate
    cells = np.flatnonzero(counts)
    cell = np.repeat(cells, counts[cells])
    del counts, cells
    ns = len(cell)
    hours = rng.choice(24, size=ns, p=np.asarray(S.HOUR_WEIGHTS) / sum(S.HOUR_WEIGHTS))
    tod_us = ((hours + rng.random(ns)) * (_LATEST_SESSION_START_S / 24.0 * _US_PER_SECOND)).astype(
        np.int64
    )
    order = np.argsort(cell.astype(np.int64) * _US_PER_DAY + tod_us, kind="stable")
    cell, tod_us = cell[order], tod_us[order]
    s_user = (cell // days).astype(np.int64)  # local user index
    s_day = (cell % days).astype(np.int64)
    del cell, order
    s_ts = start_us + s_day * _US_PER_DAY + tod_us
    del tod_us
    s_dur = (
        (np.minimum(rng.exponential(S.SESSION_MEAN_SECONDS, ns), S.SESSION_MAX_SECONDS) + 5.0)
        * _US_PER_SECOND
    ).astype(np.int64)

    # --- exposures --------------------------------------------------------------------------
    exp_first = min(S.EXPERIMENT_OFFSET_DAYS, days - 1)
    exp_last = min(exp_first + cfg.experiment_days - 1, days - 1)
    gate_first = min(S.GATE_OFFSET_DAYS, days - 1)
    gate_last = min(gate_first + S.GATE_LENGTH_DAYS - 1, days - 1)
    variant = users.variant[u0:u1]
    gate_variant = users.gate_variant[u0:u1]

    ex_parts = []
    post = {}
    for name, first_day, last_day, log_prob, assigned, multi, k in (
        (S.EXPERIMENT, exp_first, exp_last, S.EXPERIMENT_LOG_PROB, variant,
         users.multi_experiment[u0:u1], len(S.EXPERIMENT_VARIANTS)),
        (S.GATE, gate_first, gate_last, S.GATE_LOG_PROB, gate_variant,
         users.multi_gate[u0:u1], len(S.GATE_VARIANTS)),
    ):
        rows, row_ts, first_session_ts = _exposure_rows(
            rng, s_user, s_ts, s_day, first_day, last_day, log_prob, nu, start_us
        )
        post[name] = s_ts >= first_session_ts[s_user]
        r_user = s_user[rows]
        r_variant = assigned[r_user]
        r_device = r_user + u0
        # Multi-exposed: one extra row in another variant, from a second device, between the
        # first exposure and the end of the period.
        m_user = np.flatnonzero(multi & (first_session_ts < np.iinfo(np.int64).max))
        period_end_us = start_us + (last_day + 1) * _US_PER_DAY - _US_PER_SECOND
        m_first = first_session_ts[m_user] + 60 * _US_PER_SECOND
        m_ts = _within(rng, m_first, np.maximum(period_end_us - m_first, 1))
        m_variant = ((assigned[m_user] + rng.integers(1, k, len(m_user))) % k).astype(np.int8)
        m_device = cfg.users + m_user + u0  # second devices are numbered after the users
        ex_parts.append(
            dict(
                user=np.concatenate([r_user, m_user]) + u0,
                ts=np.concatenate([row_ts, m_ts]),
                experiment=np.full(len(rows) + len(m_user), 0 if name == S.EXPERIMENT else 1,
                                   np.int8),
                variant=np.concatenate([r_variant, m_variant]),
                device_index=np.concatenate([r_device, m_device]),
            )
        )
    exposures = {key: np.concatenate([p[key] for p in ex_parts]) for key in ex_parts[0]}

    # --- events per session -------------------------------------------------------------
    v = S.EXPERIMENT_VARIANTS
    s_variant = variant[s_user]
    btn = post[S.EXPERIMENT]
    red = btn & (s_variant == v.index("red"))
    orange = btn & (s_variant == v.index("orange"))
    gate_on = post[S.GATE] & (gate_variant[s_user] == S.GATE_VARIANTS.index("on"))
    del s_variant, btn
    eff_red = S.PLANTED_EFFECTS[S.EXPERIMENT]["red"]
    eff_orange = S.PLANTED_EFFECTS[S.EXPERIMENT]["orange"]
    eff_gate = S.PLANTED_EFFECTS[S.GATE]["on"]

    out_sess, out_ts, out_code = [], [], []

    def emit(code: int, sess: np.ndarray, ts: np.ndarray) -> None:
        out_sess.append(sess)
        out_ts.append(ts)
        out_code.append(np.full(len(sess), code, np.int8))

    codes = {name: i for i, name in enumerate(S.EVENT_NAMES)}
    all_sessions = np.arange(ns)
    emit(codes["session_start"], all_sessions, s_ts)

    pv_mean = np.where(
        gate_on,
        S.EXTRA_PAGE_VIEWS_PER_SESSION * eff_gate["extra_page_views_per_session"],
        S.EXTRA_PAGE_VIEWS_PER_SESSION,
    )
    n_pv = 1 + rng.poisson(pv_mean)
    del pv_mean
    pv_sess = np.repeat(all_sessions, n_pv)
    pv_rank = np.arange(len(pv_sess)) - np.repeat(np.cumsum(n_pv) - n_pv, n_pv)
    pv_off = (s_dur[pv_sess] * ((pv_rank + rng.random(len(pv_sess))) / n_pv[pv_sess])).astype(
        np.int64
    )
    emit(codes["page_view"], pv_sess, s_ts[pv_sess] + pv_off)
    del pv_sess, pv_rank, pv_off, n_pv

    api_sess = np.repeat(all_sessions, rng.poisson(S.API_REQUESTS_PER_SESSION, ns))
    api_ts = _within(rng, s_ts[api_sess], s_dur[api_sess])
    emit(codes["api_request"], api_sess, api_ts)
    ok = rng.random(len(api_sess)) < S.API_SUCCESS_PROB
    ok_ts = api_ts[ok] + (rng.uniform(0.02, 0.8, int(ok.sum())) * _US_PER_SECOND).astype(np.int64)
    emit(codes["api_success"], api_sess[ok], ok_ts)
    del api_sess, api_ts, ok, ok_ts

    p_visit = np.where(
        red, S.VISITED_SIGNUP_PER_SESSION * eff_red["visited_signup_per_session"],
        S.VISITED_SIGNUP_PER_SESSION,
    )
    visit = np.flatnonzero(rng.random(ns) < p_visit)
    visit_ts = _within(rng, s_ts[visit], s_dur[visit])
    emit(codes["visited_signup"], visit, visit_ts)
    success = rng.random(len(visit)) < S.SIGNUP_SUCCESS_PER_VISIT
    signup_ts = visit_ts[success] + (
        rng.uniform(20.0, 300.0, int(success.sum())) * _US_PER_SECOND
    ).astype(np.int64)
    emit(codes["signup_success"], visit[success], signup_ts)
    del p_visit, visit, visit_ts, success, signup_ts

    p_buy = np.where(
        orange, S.PURCHASE_PER_SESSION * eff_orange["purchase_per_session"],
        S.PURCHASE_PER_SESSION,
    )
    buy = np.flatnonzero(rng.random(ns) < p_buy)
    amount = S.PURCHASE_MEDIAN_AMOUNT * np.exp(
        rng.normal(0.0, S.PURCHASE_AMOUNT_LOG_SD, len(buy))
    )
    amount = np.where(orange[buy], amount * eff_orange["purchase_amount"], amount)
    emit(codes["purchase"], buy, _within(rng, s_ts[buy], s_dur[buy]))
    amount = np.round(amount, 2)

    # Order the block's events by day (stable radix sort on a small int), keep compact columns.
    sess = np.concatenate(out_sess)
    out_sess.clear()  # free the parts; emit() keeps a reference to the list
    e_day = s_day.astype(np.int16)[sess]
    order = np.argsort(e_day, kind="stable")
    events = dict(
        user=(s_user.astype(np.int32) + np.int32(u0))[sess[order]],
        ts=np.concatenate(out_ts)[order],
        code=np.concatenate(out_code)[order],
        day_counts=np.bincount(e_day, minlength=days),
    )
    # Purchase amounts in the same (stable, by day) order as the purchase rows above.
    buy_day = e_day[len(sess) - len(buy):]
    buy_order = np.argsort(buy_day, kind="stable")
    events["amount"] = amount[buy_order]
    events["amount_day_counts"] = np.bincount(buy_day, minlength=days)
    return exposures, events


def _assemble_by_day(blocks: list[dict], days: int) -> dict[str, np.ndarray]:
    """Concatenate the blocks' day-sorted events into day-major order (day, then block)."""
    counts = np.stack([b["day_counts"] for b in blocks])  # blocks x days
    starts = np.concatenate([np.zeros((len(blocks), 1), np.int64), np.cumsum(counts, 1)], 1)
    out_pos = np.cumsum(counts.T.ravel()) - counts.T.ravel()  # day-major
    out_pos = out_pos.reshape(days, len(blocks))
    total = int(counts.sum())
    out = {
        "user": np.empty(total, np.int32),
        "ts": np.empty(total, np.int64),
        "code": np.empty(total, np.int8),
    }
    for b, blk in enumerate(blocks):
        for d in np.flatnonzero(counts[b]):
            a, z, o = starts[b, d], starts[b, d + 1], out_pos[d, b]
            for key, arr in out.items():
                arr[o:o + z - a] = blk[key][a:z]
        for key in out:
            del blk[key]
    a_counts = np.stack([b["amount_day_counts"] for b in blocks])
    a_starts = np.concatenate([np.zeros((len(blocks), 1), np.int64), np.cumsum(a_counts, 1)], 1)
    out["amount"] = np.concatenate(
        [blocks[b]["amount"][a_starts[b, d]:a_starts[b, d + 1]]
         for d in range(days) for b in range(len(blocks))]
    )
    return out


def generate_demo(config: DemoConfig | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Generate the demo warehouse tables as columns of numpy arrays.

    Returns ``{"raw.exposures": {...}, "raw.events": {...}}``; every table is a dict of
    equal-length 1-D arrays (exposures sorted by ``ts``; events sorted by day, not by time
    within a day):

    ``raw.exposures``: ``user_id``, ``stable_id``, ``experiment``, ``group_name``,
    ``country``, ``device`` (``object`` arrays of ``str``), ``ts`` (``datetime64[us]``).

    ``raw.events``: ``user_id``, ``event_name``, ``country`` (``object`` arrays of ``str``),
    ``ts`` (``datetime64[us]``), ``value`` (``float64``: the amount for ``purchase`` rows,
    NaN on every other row — NaN means NULL: DuckDB's numpy scan already turns it into NULL,
    ``duckdb.connect().register(name, columns)`` gives VARCHAR / TIMESTAMP / DOUBLE columns).

    String columns are ``object`` arrays on purpose: numpy ``str`` (``<U``) arrays would
    register in DuckDB as ENUM columns, not VARCHAR.

    Timestamps are naive (UTC by convention) and all fall in ``[start, start + days)``.
    """
    cfg = config if config is not None else DemoConfig()
    users = _Users(cfg)
    start_us = int(
        (np.datetime64(cfg.start.isoformat(), "us") - np.datetime64(0, "us")).astype(np.int64)
    )
    ex_blocks, ev_blocks = [], []
    for u0 in range(0, cfg.users, _BLOCK_USERS):
        ex, ev = _block(cfg, users, u0, min(u0 + _BLOCK_USERS, cfg.users), start_us)
        ex_blocks.append(ex)
        ev_blocks.append(ev)

    ex = {key: np.concatenate([b[key] for b in ex_blocks]) for key in ex_blocks[0]}
    del ex_blocks
    ev = _assemble_by_day(ev_blocks, cfg.days)
    del ev_blocks

    width = max(6, len(str(cfg.users - 1)))
    user_ids = np.array([f"u{i:0{width}d}" for i in range(cfg.users)], dtype=object)
    countries = np.array(S.COUNTRIES, dtype=object)
    devices = np.array(S.DEVICES, dtype=object)

    # Exposures: few rows, sorted by ts (ties, if any, keep the generation order).
    order = np.argsort(ex["ts"], kind="stable")
    ex = {k: a[order] for k, a in ex.items()}
    group_names = np.array(S.EXPERIMENT_VARIANTS + S.GATE_VARIANTS, dtype=object)
    group = ex["variant"].astype(np.int64) + np.where(
        ex["experiment"] == 0, 0, len(S.EXPERIMENT_VARIANTS)
    )
    device_index = ex["device_index"]
    second = device_index >= cfg.users
    stable_ids = users.device_ids(np.arange(cfg.users))[np.where(second, 0, device_index)]
    stable_ids[second] = users.device_ids(device_index[second])
    exposures = {
        "user_id": user_ids[ex["user"]],
        "stable_id": stable_ids,
        "experiment": np.array([S.EXPERIMENT, S.GATE], dtype=object)[ex["experiment"]],
        "group_name": group_names[group],
        "ts": ex["ts"].view("datetime64[us]"),
        "country": countries[users.country[ex["user"]]],
        "device": devices[users.device[ex["user"]]],
    }
    del ex, group, device_index, second, stable_ids

    # Events: ordered by day (like a date-partitioned table); inside a day by block of users,
    # then event type, then user and time. (A full sort by ts would cost more than generating
    # the data, and this order keeps the object-array lookups cache-friendly.)
    user = ev.pop("user")
    events = {"user_id": user_ids[user]}
    events["ts"] = ev.pop("ts").view("datetime64[us]")
    code = ev.pop("code")
    events["event_name"] = np.array(S.EVENT_NAMES, dtype=object)[code]
    value = np.full(len(code), np.nan)
    value[code == S.EVENT_NAMES.index("purchase")] = ev.pop("amount")
    del code
    events["value"] = value
    events["country"] = countries[users.country[user]]
    del user
    return {"raw.exposures": exposures, "raw.events": events}
