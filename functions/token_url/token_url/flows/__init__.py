"""The service's flows, one module each; nothing here knows about HTTP (the handler turns outcomes into
responses) or about boto3 (the flows use the protocols of `token_url.ports`).

- `start`: POST /token-url, issue a token URL and its one-time value.
- `token_post`: POST /token, spend the value and sign in or link, through `replay`.
- `replay`: a submission runs once; replays get the recorded result, duplicates wait for it.
- `sign_in`: the token POST of a sign-in, a new session.
- `link`: the token POST of a link, at once or held for confirmation; GET and POST /link.
- `profile`: auth_info, the step the sign-in and the link share.
- `sessions`: POST, GET and DELETE /session.
- `account`: the Registration account behind a session (Capture's /entity), shared by sessions and unlink.
- `unlink`: POST /unlink.
- `credentials`: POST /credentials.
- `shared`: the clock, session keys and sealed field names, session rotation, dependency failures.
"""
