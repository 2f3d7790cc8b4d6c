"""`token-url import-tokens`: bulk-store provider tokens in Social Login with add_or_update_access_token.

It calls Social Login through the function's own client (`token_url.identity_cloud`), so the call,
its errors and their meaning are one implementation.
"""
