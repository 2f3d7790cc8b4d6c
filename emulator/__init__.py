"""In-project emulator of Identity Cloud (Janrain) Social Login and Capture, served on loopback.

emu = IdentityCloudEmulator(api_key=..., capture_client_id=...)
server = serve(emu)          # server.url is both the Social Login and the Capture base URL
token = emu.issue_token(token_url="https://app.example/token?nonce=x")
...
server.shutdown()
"""

from emulator.core import (
    ALL_ENDPOINTS,
    API_ENDPOINTS,
    DEFAULT_API_KEY,
    DEFAULT_CLIENT_ID,
    DEFAULT_FLOW,
    DEFAULT_FLOW_VERSION,
    DEFAULT_LOCALE,
    ENTITY_ATTRIBUTES,
    EmulatorConnectionReset,
    IdentityCloudEmulator,
    RecordedCall,
)
from emulator.faults import Fault, FaultKind
from emulator.profiles import PROVIDERS, ProviderInfo
from emulator.server import EmulatorServer, serve

__all__ = [
    "ALL_ENDPOINTS",
    "API_ENDPOINTS",
    "DEFAULT_API_KEY",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_FLOW",
    "DEFAULT_FLOW_VERSION",
    "DEFAULT_LOCALE",
    "ENTITY_ATTRIBUTES",
    "PROVIDERS",
    "EmulatorConnectionReset",
    "EmulatorServer",
    "Fault",
    "FaultKind",
    "IdentityCloudEmulator",
    "ProviderInfo",
    "RecordedCall",
    "serve",
]
