"""HTML pages of the emulated Social Login sign-in (for a local demo).

Each page may link one stylesheet: the local stack gives the demo site's, so that the provider pages
look like the rest of the demo. The markup uses the same elements as the demo page (header, section,
form with labelled inputs).
"""

from __future__ import annotations

from html import escape


def _page(title: str, body: str, stylesheet: str | None = None, body_attrs: str = "") -> str:
    style = f'<link rel="stylesheet" href="{escape(stylesheet)}">' if stylesheet else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><link rel="icon" href="data:,">{style}</head>\n'
        f"<body{body_attrs}>\n{body}\n</body></html>\n"
    )


def _header(title: str) -> str:
    about = "Identity Cloud emulator: a stand-in for the provider's sign-in."
    return f"<header><h1>{escape(title)}</h1><p>{about}</p></header>\n"


def start_page(
    provider_slug: str,
    provider_name: str,
    token_url: str,
    default_user: str = "alice",
    stylesheet: str | None = None,
) -> str:
    title = f"Sign in with {provider_name}"
    body = (
        f"{_header(title)}<section>\n"
        "<p>No password: choose a user name. The same name gives the same identity each time.</p>\n"
        f'<form method="post" action="/{escape(provider_slug)}/callback">\n'
        f'<input type="hidden" name="token_url" value="{escape(token_url)}">\n'
        f'<label>User <input name="user" value="{escape(default_user)}" required></label>\n'
        f'<button type="submit">{escape(title)}</button>\n'
        "</form>\n</section>"
    )
    return _page(title, body, stylesheet)


def token_post_page(token_url: str, token: str, stylesheet: str | None = None) -> str:
    """Mimics Social Login's redirect flow: a page on the Social Login domain POSTs the token cross-site."""
    body = (
        "<section>\n<p>Signing in&hellip;</p>\n"
        f'<form method="post" action="{escape(token_url)}">\n'
        f'<input type="hidden" name="token" value="{escape(token)}">\n'
        '<noscript><button type="submit">Continue</button></noscript>\n'
        "</form>\n</section>"
    )
    return _page("Signing in...", body, stylesheet, ' onload="document.forms[0].submit()"')


def error_page(status: int, message: str, stylesheet: str | None = None) -> str:
    title = f"Error {status}"
    return _page(title, f"{_header(title)}<section><p>{escape(message)}</p></section>", stylesheet)


def http_500_page() -> str:
    return _page(
        "500 Internal Server Error",
        "<h1>Internal Server Error</h1>\n<p>The server encountered an internal error.</p>",
    )
