"""`token-url import-tokens`: bulk-store provider tokens in Social Login with add_or_update_access_token.

It calls Social Login through the function's own client (identity_cloud.py), so the call, its
errors and their meaning are one implementation; the function's modules are imported flat from
functions/token_url, as the Lambda runtime imports them, put on the path here.
"""

import pathlib
import sys

FUNCTION_DIR = pathlib.Path(__file__).resolve().parent.parent / "functions" / "token_url"
if not FUNCTION_DIR.is_dir():
    # Installed from a wheel, the function's modules would be missing: the command runs from a checkout.
    raise ImportError(
        f"token-url needs the repository checkout it was installed from (make install): no {FUNCTION_DIR}"
    )
if str(FUNCTION_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTION_DIR))
