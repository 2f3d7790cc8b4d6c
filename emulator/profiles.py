"""Providers known to the emulator, and the default auth_info profile/accessCredentials per provider.

The accessCredentials field lists follow the vendor's auth_info page (docs/identity-cloud.md, "auth_info").
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class ProviderInfo:
    slug: str
    """Short name used in browser URLs: ``/<slug>/start``."""
    name: str
    """``profile.providerName``."""
    host: str
    """Host of the provider's identifiers (``https://<host>/profile/<user>``)."""
    credential_fields: tuple[str, ...]
    """Fields of ``accessCredentials`` (the vendor's auth_info page); empty: no accessCredentials."""
    credential_type: str = "OAuth"
    email: bool = True
    verified_email: bool = False

    @property
    def domain(self) -> str:
        """The ``domain`` of this provider's identities in a Capture record's ``profiles``."""
        return self.host.removeprefix("www.")


_OAUTH1 = ("oauthToken", "oauthTokenSecret", "type")

PROVIDERS: dict[str, ProviderInfo] = {
    p.slug: p
    for p in (
        ProviderInfo(
            "google",
            "Google",
            "www.google.com",
            ("oauthToken", "oauthTokenSecret", "scopes", "type"),
            verified_email=True,
        ),
        ProviderInfo(
            "facebook",
            "Facebook",
            "www.facebook.com",
            ("accessToken", "expires", "uid", "type"),
            credential_type="Facebook",
            verified_email=True,
        ),
        ProviderInfo("twitter", "Twitter", "twitter.com", _OAUTH1, email=False),
        ProviderInfo("linkedin", "LinkedIn", "www.linkedin.com", _OAUTH1, verified_email=True),
        ProviderInfo("orkut", "Orkut", "www.orkut.com", _OAUTH1),
        ProviderInfo(
            "amazon",
            "Amazon",
            "www.amazon.com",
            ("accessToken", "uid", "expires", "refreshToken", "scopes"),
            verified_email=True,
        ),
        ProviderInfo(
            "disqus", "Disqus", "disqus.com", ("accessToken", "uuid", "expires", "refreshToken", "type")
        ),
        ProviderInfo(
            "flickr",
            "Flickr",
            "www.flickr.com",
            ("oauthToken", "oauthSessionHandle", "oauthTokenSecret", "type"),
        ),
        ProviderInfo(
            "myspace",
            "MySpace",
            "www.myspace.com",
            ("oauthToken", "oauthSessionHandle", "oauthTokenSecret", "type"),
        ),
        ProviderInfo(
            "yahoo",
            "Yahoo!",
            "me.yahoo.com",
            ("oauthToken", "oauthSessionHandle", "oauthTokenSecret", "type"),
            verified_email=True,
        ),
        ProviderInfo(
            "googleplus",
            "Google+",
            "plus.google.com",
            ("accessToken", "uid", "expires", "scopes", "type"),
            credential_type="OAuth2",
            verified_email=True,
        ),
        ProviderInfo(
            "instagram",
            "Instagram",
            "instagram.com",
            ("accessToken", "uid", "scopes", "type"),
            credential_type="OAuth2",
            email=False,
        ),
        ProviderInfo("mixi", "Mixi", "mixi.jp", ("accessToken", "refreshToken", "expires", "scopes")),
        ProviderInfo(
            "mydigipass", "MYDIGIPASS.COM", "www.mydigipass.com", ("accessToken", "uid", "type"), "OAuth2"
        ),
        ProviderInfo("paypal", "PayPal", "www.paypal.com", ("uid",)),
        ProviderInfo("qq", "QQ", "qq.com", ("accessToken", "uid", "scopes", "type"), "OAuth2", email=False),
        ProviderInfo("renren", "RenRen", "www.renren.com", ("type", "oauthToken", "uid", "expires")),
        ProviderInfo("soundcloud", "SoundCloud", "soundcloud.com", ("type", "oauthToken", "uid")),
        ProviderInfo("sinaweibo", "Sina Weibo", "weibo.com", ("type", "oauthToken", "uid"), email=False),
        ProviderInfo("tumblr", "tumblr", "www.tumblr.com", ("oauthToken", "oauthTokenSecret", "uid", "type")),
        ProviderInfo(
            "vk", "VK", "vk.com", ("accessToken", "uuid", "expires", "scopes", "types"), "OAuth2", email=False
        ),
        ProviderInfo(
            "microsoft",
            "Microsoft Account",
            "login.live.com",
            ("eact", "type"),
            credential_type="WindowsLive",
            verified_email=True,
        ),
        ProviderInfo("xing", "Xing", "www.xing.com", ("oauthToken", "oauthTokenSecret", "uid", "type")),
        ProviderInfo("foursquare", "Foursquare", "foursquare.com", ()),
    )
}

_ALIASES = {
    "googleplus": "googleplus",
    "google+": "googleplus",
    "microsoftaccount": "microsoft",
    "windowslive": "microsoft",
    "mydigipasscom": "mydigipass",
}


def _normalize(name: str) -> str:
    lowered = name.strip().lower()
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    squashed = re.sub(r"[^a-z0-9+]", "", lowered).replace("+", "plus")
    return _ALIASES.get(squashed, squashed)


def provider_by_name(name: str) -> ProviderInfo | None:
    """Look a provider up by slug or providerName ("Google", "google", "Yahoo!", "Google+", ...)."""
    return PROVIDERS.get(_normalize(name))


def provider_by_identifier(identifier: str) -> ProviderInfo | None:
    host = (urlsplit(identifier).hostname or "").lower()
    best: ProviderInfo | None = None
    for info in PROVIDERS.values():
        base = info.host.removeprefix("www.")
        if (host == base or host.endswith("." + base)) and (best is None or len(info.host) > len(best.host)):
            best = info
    return best


def profile_domain(identifier: str) -> str:
    """The Capture ``profiles[].domain`` of an identifier: its provider's, else the identifier's host."""
    info = provider_by_identifier(identifier)
    if info is not None:
        return info.domain
    return (urlsplit(identifier).hostname or "").removeprefix("www.")


def identifier_for(info: ProviderInfo, user: str) -> str:
    return f"https://{info.host}/profile/{user}"


def _subject(identifier: str) -> str:
    """The user part of an identifier: ``...profile.php?id=123`` -> 123, ``.../profiles/sam`` -> sam."""
    parts = urlsplit(identifier)
    for _key, value in parse_qsl(parts.query):
        if value:
            return value
    segments = [s for s in parts.path.split("/") if s]
    return segments[-1] if segments else secrets.token_hex(6)


def _handle(subject: str) -> str:
    cleaned = re.sub(r"[^a-z0-9._-]", "", subject.lower())
    if not cleaned or cleaned.isdigit():
        return f"user{cleaned[-6:]}" if cleaned else "user"
    return cleaned


def default_profile(identifier: str, provider_name: str) -> dict[str, Any]:
    """A Portable Contacts profile like the example on the vendor's auth_info page."""
    info = provider_by_name(provider_name) or provider_by_identifier(identifier)
    subject = _subject(identifier)
    handle = _handle(subject)
    given = handle.split(".")[0].capitalize()
    profile: dict[str, Any] = {
        "identifier": identifier,
        "providerName": provider_name,
        "displayName": handle,
        "preferredUsername": handle,
        "name": {"givenName": given, "familyName": "Example", "formatted": f"{given} Example"},
        "url": identifier,
    }
    if info is None or info.email:
        email = f"{handle}@example.com"
        profile["email"] = email
        if info is not None and info.verified_email:
            profile["verifiedEmail"] = email
    if info is not None and info.slug == "google":
        profile["googleUserId"] = subject
    return profile


_CREDENTIAL_VALUES: dict[str, Callable[[ProviderInfo, str], Any]] = {
    "uid": lambda _info, subject: subject,
    "uuid": lambda _info, subject: subject,
    "expires": lambda _info, _subject: int(time.time()) + 3600,
    "type": lambda info, _subject: info.credential_type,
    "types": lambda info, _subject: info.credential_type,
    "scopes": lambda _info, _subject: "email,profile",
    "oauthToken": lambda _info, _subject: f"1/{secrets.token_urlsafe(32)}",
    "oauthTokenSecret": lambda _info, _subject: secrets.token_hex(12),
}


def _credential_value(field: str, info: ProviderInfo, subject: str) -> Any:
    make = _CREDENTIAL_VALUES.get(field)
    return make(info, subject) if make is not None else secrets.token_urlsafe(32)


def default_access_credentials(identifier: str, provider_name: str) -> dict[str, Any] | None:
    """accessCredentials with the provider's fields (the vendor's auth_info page), or None if it has none."""
    info = provider_by_name(provider_name) or provider_by_identifier(identifier)
    if info is None or not info.credential_fields:
        return None
    subject = _subject(identifier)
    return {field: _credential_value(field, info, subject) for field in info.credential_fields}


def merged_poco(profile: dict[str, Any]) -> dict[str, Any]:
    """The ``merged_poco`` block auth_info adds with ``extended=true``."""
    poco: dict[str, Any] = {"languagesSpoken": ["en"]}
    if "url" in profile:
        poco["urls"] = [{"type": "other", "value": profile["url"]}]
    for key in ("preferredUsername", "displayName", "name"):
        if key in profile:
            poco[key] = profile[key]
    if "email" in profile:
        poco["emails"] = [{"type": "other", "value": profile["email"]}]
    return poco
