"""HTML pages of the emulated Social Login sign-in (for a local demo)."""

from __future__ import annotations

from html import escape


def _page(title: str, body: str, body_attrs: str = "") -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head>\n<body{body_attrs}>\n{body}\n</body></html>\n"
    )


def start_page(provider_slug: str, provider_name: str, token_url: str, default_user: str = "alice") -> str:
    title = f"Sign in with {provider_name}"
    body = (
        f"<h1>{escape(title)}</h1>\n"
        "<p>Identity Cloud emulator: no password, choose a user name.</p>\n"
        f'<form method="post" action="/{escape(provider_slug)}/callback">\n'
        f'<input type="hidden" name="token_url" value="{escape(token_url)}">\n'
        f'<label>User <input name="user" value="{escape(default_user)}" required></label>\n'
        f'<button type="submit">{escape(title)}</button>\n'
        "</form>"
    )
    return _page(title, body)


def token_post_page(token_url: str, token: str) -> str:
    """Mimics Social Login's redirect flow: a page on the Social Login domain POSTs the token cross-site."""
    body = (
        f'<form method="post" action="{escape(token_url)}">\n'
        f'<input type="hidden" name="token" value="{escape(token)}">\n'
        '<noscript><button type="submit">Continue</button></noscript>\n'
        "</form>"
    )
    return _page("Signing in...", body, ' onload="document.forms[0].submit()"')


def error_page(status: int, message: str) -> str:
    return _page(f"Error {status}", f"<h1>Error {status}</h1>\n<p>{escape(message)}</p>")


def http_500_page() -> str:
    return _page(
        "500 Internal Server Error",
        "<h1>Internal Server Error</h1>\n<p>The server encountered an internal error.</p>",
    )
