"""Developer tools: the local stack, its gateway and demo, and the SAM template, CLI and events.

They host the function in-process, as the Lambda runtime does: its modules are imported flat from
functions/token_url (Lambda's /var/task), which is put on the path here, once.
"""

import pathlib
import sys

FUNCTION_DIR = pathlib.Path(__file__).resolve().parent.parent / "functions" / "token_url"
if str(FUNCTION_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTION_DIR))
