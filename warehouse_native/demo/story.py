"""The story the demo data tells: names, shares, rates and the effects planted in it.

Everything the generator draws from is a constant here, so the demo metric catalog,
the acceptance tests and the docs can quote the same numbers the data was made with.
All multipliers are *per session* (the unit the generator simulates) and apply only to
sessions that start at or after the user's first exposure to the experiment/gate.
User-level effects (what a scorecard shows) are listed in ``EXPECTED_USER_LEVEL_EFFECTS``.
"""

from __future__ import annotations

from types import MappingProxyType

# --- the experiment -------------------------------------------------------------------
EXPERIMENT = "button_color_v3"
EXPERIMENT_VARIANTS = ("blue", "red", "green", "orange")  # blue is the control
EXPERIMENT_CONTROL = "blue"
EXPERIMENT_WEIGHTS = (0.25, 0.25, 0.25, 0.25)
EXPERIMENT_OFFSET_DAYS = 14  # first day = start + 14 days (2026-10-15 with the default start)
EXPERIMENT_LENGTH_DAYS = 15  # inclusive end = first day + 14 days (2026-10-29)
EXPERIMENT_LOG_PROB = 0.85  # share of a user's sessions in the period that log an exposure

# --- the feature gate -----------------------------------------------------------------
GATE = "show_new_homepage"
GATE_VARIANTS = ("off", "on")  # off is the control
GATE_CONTROL = "off"
GATE_WEIGHTS = (0.8, 0.2)
GATE_OFFSET_DAYS = 17  # 2026-10-18 with the default start
GATE_LENGTH_DAYS = 11  # inclusive end 2026-10-28
GATE_LOG_PROB = 0.5

MAX_EXPOSURE_ROWS = 8  # per user and experiment (the SDK stops re-logging after that)
MULTI_EXPOSED_SHARE = 0.005  # exposed users also logged once in another variant

# --- users ------------------------------------------------------------------------------
COUNTRIES = ("US", "GB", "DE", "FR", "BR", "IN")
COUNTRY_SHARES = (0.38, 0.12, 0.11, 0.09, 0.14, 0.16)
DEVICES = ("ios", "android", "web")
DEVICE_SHARES = (0.36, 0.41, 0.23)
ACTIVITY_SHAPE = 0.8  # latent activity ~ Gamma(shape, 1/shape): mean 1, CV 1.12
ACTIVITY_DRIFT_SD = 0.6  # per-user log-trend of activity over 28 days (decorrelates pre/post)
WEEKEND_FACTOR = 0.85

# --- sessions and events ----------------------------------------------------------------
SESSIONS_PER_USER_DAY = 0.35  # at activity 1 and events_per_user_day = 1
SESSION_MEAN_SECONDS = 420.0
SESSION_MAX_SECONDS = 1800.0
EXTRA_PAGE_VIEWS_PER_SESSION = 1.0  # page views per session = 1 + Poisson(1.0)
API_REQUESTS_PER_SESSION = 0.5  # Poisson
API_SUCCESS_PROB = 0.97
VISITED_SIGNUP_PER_SESSION = 0.06
SIGNUP_SUCCESS_PER_VISIT = 0.35
PURCHASE_PER_SESSION = 0.08
PURCHASE_MEDIAN_AMOUNT = 28.0
PURCHASE_AMOUNT_LOG_SD = 0.7  # lognormal: mean = 28 * exp(0.7**2 / 2) = 35.7

EVENT_NAMES = (
    "session_start",
    "page_view",
    "api_request",
    "api_success",
    "visited_signup",
    "signup_success",
    "purchase",
)

# Hour-of-day weights for session starts (a gentle diurnal curve).
HOUR_WEIGHTS = (
    2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 6,
    7, 7, 6, 6, 6, 7, 8, 9, 9, 8, 6, 4,
)

# --- planted effects (per-session multipliers after first exposure) -----------------------
PLANTED_EFFECTS = MappingProxyType(
    {
        EXPERIMENT: MappingProxyType(
            {
                "blue": MappingProxyType({}),
                "red": MappingProxyType({"visited_signup_per_session": 1.40}),
                "green": MappingProxyType({}),
                "orange": MappingProxyType(
                    {"purchase_per_session": 0.80, "purchase_amount": 0.95}
                ),
            }
        ),
        GATE: MappingProxyType(
            {
                "off": MappingProxyType({}),
                "on": MappingProxyType({"extra_page_views_per_session": 1.20}),
            }
        ),
    }
)

# What a scorecard should roughly show vs control (relative, from first exposure to the end of
# the data), measured on the default config over several seeds; tests/demo checks the signs.
EXPECTED_USER_LEVEL_EFFECTS = MappingProxyType(
    {
        EXPERIMENT: MappingProxyType(
            {
                "red": "visited_signup conversion about +28% (p ~ 1e-12 at 20k users), "
                "signup_success count about +40%; nothing else changes",
                "green": "no effect on anything",
                "orange": "revenue about -24% (purchases per user -20%, amount per purchase "
                "-5%; p ~ 1e-8 at 20k users); nothing else changes",
            }
        ),
        GATE: MappingProxyType(
            {"on": "page views per user and pages per session about +10%; sessions unchanged"}
        ),
    }
)
