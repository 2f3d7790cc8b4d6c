"""Run the emulator in the foreground: ``python -m emulator --port 8089``."""

from __future__ import annotations

import argparse
import logging

from emulator.core import (
    DEFAULT_API_KEY,
    DEFAULT_CLIENT_ID,
    DEFAULT_FLOW,
    DEFAULT_FLOW_VERSION,
    DEFAULT_LOCALE,
    IdentityCloudEmulator,
)
from emulator.server import EmulatorServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--flow", default=DEFAULT_FLOW)
    parser.add_argument("--flow-version", default=DEFAULT_FLOW_VERSION)
    parser.add_argument("--locale", default=DEFAULT_LOCALE)
    parser.add_argument(
        "--no-login-feature", action="store_true", help="Capture answers 403 permission_error"
    )
    parser.add_argument("--social-login-error-status", type=int, default=400, choices=(200, 400))
    parser.add_argument(
        "--reusable-tokens", action="store_true", help="auth_info may read a token repeatedly"
    )
    parser.add_argument(
        "--auth-info-spends-token-for-capture",
        action="store_true",
        help="with one-time tokens, link_account_native refuses a token auth_info has read (unconfirmed)",
    )
    parser.add_argument("--token-ttl", type=float, default=300.0)
    parser.add_argument(
        "--redirect-with-get", action="store_true", help="302 to the token URL, not a form POST"
    )
    parser.add_argument(
        "--token-url-domain", action="append", help="allow-listed token URL host (repeatable)"
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO)
    emu = IdentityCloudEmulator(
        api_key=args.api_key,
        capture_client_id=args.client_id,
        flow=args.flow,
        flow_version=args.flow_version,
        locale=args.locale,
        client_has_login_feature=not args.no_login_feature,
        social_login_error_status=args.social_login_error_status,
        one_time_tokens=not args.reusable_tokens,
        auth_info_spends_token_for_capture=args.auth_info_spends_token_for_capture,
        token_ttl_seconds=args.token_ttl,
        post_to_token_url=not args.redirect_with_get,
        token_url_domains=args.token_url_domain,
    )
    server = EmulatorServer(emu, args.host, args.port, quiet=args.quiet)
    print(f"Identity Cloud emulator on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
