"""Init in a fresh interpreter: the libraries load before the function's own modules and are frozen out
of the garbage collector's way; collection is back on once init ends; no model is built at init, and the
SnapStart warm-up builds every one; the snapshot holds none of init's garbage; an init that fails leaves
collection on (token_url/preload.py, token_url/models.py)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.function_world import function_environment
from tests.support import json_answer_of_fresh_python

_INIT_THEN_SNAPSHOT = """
import gc, json, sys

def third_party():
    return {name for name in sys.modules
            if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith(("_", "token_url"))}

import token_url.preload
facts = {"libraries": sorted(third_party()), "collecting during init": gc.isenabled()}
own_modules = [name for name in sys.modules if name.startswith("token_url.") and name != "token_url.preload"]
frozen_by_preload = gc.get_freeze_count()
from token_url import app
from token_url.models import LazyModel

def every_model():
    pending, found = list(LazyModel.__subclasses__()), []
    while pending:
        model = pending.pop()
        found.append(model)
        pending.extend(model.__subclasses__())
    return found

facts.update({
    "own modules before preload ended": own_modules,
    "loaded after preload": sorted(third_party() - set(facts["libraries"])),
    "frozen by preload": frozen_by_preload > 0,
    "frozen more at the end of init": gc.get_freeze_count() > frozen_by_preload,
    "collecting after init": gc.isenabled(),
    "models": len(every_model()),
    "built at init": sorted(m.__name__ for m in every_model() if m.__pydantic_complete__),
})
from testkit.snapstart import take_snapshot
take_snapshot()
unbuilt = [model.__name__ for model in every_model() if not model.__pydantic_complete__]
facts["not built before the snapshot"] = sorted(unbuilt)
gc.unfreeze()
facts["garbage left after the snapshot"] = gc.collect()
print(json.dumps(facts))
"""

_INIT_THAT_FAILS = """
import gc, json
try:
    from token_url import app
except Exception as error:
    print(json.dumps({"failed with": type(error).__name__, "collecting": gc.isenabled()}))
"""


@pytest.fixture(scope="module")
def facts() -> dict[str, Any]:
    """One fresh interpreter's init and snapshot, for every test here."""
    environment = {
        **os.environ,
        **function_environment("http://127.0.0.1:9"),
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    found: dict[str, Any] = json_answer_of_fresh_python(_INIT_THEN_SNAPSHOT, environment)
    return found


def test_every_library_loads_before_the_functions_own_modules_and_is_frozen(facts: dict[str, Any]) -> None:
    assert facts["own modules before preload ended"] == []
    # A library the function loads at init but preload does not would escape the freeze.
    assert facts["loaded after preload"] == []
    assert {"boto3", "botocore", "pydantic.main", "requests"} <= set(facts["libraries"])
    assert facts["frozen by preload"] is True
    assert facts["frozen more at the end of init"] is True


def test_collection_pauses_during_the_functions_own_init_and_resumes_after(facts: dict[str, Any]) -> None:
    assert facts["collecting during init"] is False
    assert facts["collecting after init"] is True


def test_no_model_is_built_at_init_and_the_snapshot_has_them_all(facts: dict[str, Any]) -> None:
    assert facts["models"] >= 20
    assert facts["built at init"] == []
    assert facts["not built before the snapshot"] == []


def test_the_snapshot_keeps_none_of_the_garbage_init_left_frozen(facts: dict[str, Any]) -> None:
    assert facts["garbage left after the snapshot"] == 0


def test_an_init_that_fails_leaves_collection_on() -> None:
    environment = {
        name: value
        for name, value in {**os.environ, **function_environment("http://127.0.0.1:9")}.items()
        if name != "SESSIONS_TABLE"
    }
    assert json_answer_of_fresh_python(_INIT_THAT_FAILS, environment) == {
        "failed with": "ConfigurationError",
        "collecting": True,
    }
