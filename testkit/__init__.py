"""What tests, the benchmark and the dev tools share to drive the function as AWS would.

- `events`: API Gateway HTTP API (payload format 2.0) events, the one builder of them;
- `lambda_context`: the context object Lambda passes to a handler;
- `logs`: a logging handler that keeps every line as Powertools writes it;
- `sites`: the addresses the function's test configuration names (app, API, Social Login);
- `browser`: a person's browser, with a SameSite-aware cookie jar, driving a handler in-process.
"""
