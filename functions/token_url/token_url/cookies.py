"""The service's two cookies, named once for the function, its tests, the local stack and the benchmark."""

SESSION_COOKIE = "__Host-tu_session"
# SameSite=None so that it reaches the cross-site token POST; on its own it grants nothing.
BROWSER_COOKIE = "__Host-tu_browser"
BROWSER_COOKIE_MAX_AGE = 24 * 3600
