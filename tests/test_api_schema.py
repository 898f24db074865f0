"""schemathesis against the app's own OpenAPI spec: no 5xx, and responses match the schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error, response_schema_conformance  # noqa: E402

from kb.api import create_app  # noqa: E402
from kb.service import KnowledgeBase  # noqa: E402
from kb.settings import Settings  # noqa: E402
from tests.test_answer_openai import MODEL, FakeVlm  # noqa: E402
from tests.tiny_models import settings_fields  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"
KEY = "schema-admin-key-0123456789"


@pytest.fixture(scope="module")
def api_schema(
    tmp_path_factory: pytest.TempPathFactory, model_env: dict[str, str], shared_embedders: Any
) -> Iterator[Any]:
    vlm = FakeVlm()
    s = Settings(
        data_dir=tmp_path_factory.mktemp("schema") / "data",
        vlm_backend="openai",
        vlm_base_url=vlm.url,
        vlm_model=MODEL,
        vlm_retries=0,
        vlm_timeout=5.0,
        api_keys=[{"key": KEY, "role": "admin", "tenants": ["default"]}],
        api_max_upload_mb=0.2,
        **settings_fields(model_env),
    )
    kb = KnowledgeBase(s, embedders=shared_embedders)
    kb.ingest([EXAMPLES / "payments-api-spec-v2.txt"])  # the default tenant's document (no tenant tag)
    app = create_app(kb)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    app.state.api.jobs.wait_idle(60)
    kb.close()
    vlm.close()


def test_no_server_errors_and_schema_conformance(api_schema: Any) -> None:
    """Every operation, generated cases (as the admin of the default tenant); the pytest plugin is not
    used (it does not load under this pytest), so each operation runs its own hypothesis loop."""
    ran = []
    for result in api_schema.get_all_operations():
        op = result.ok()

        @given(case=op.as_strategy())
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: Any) -> None:
            case.call_and_validate(
                headers={"Authorization": f"Bearer {KEY}"}, checks=[not_a_server_error, response_schema_conformance]
            )

        run()
        ran.append(op.label)
    assert len(ran) >= 12, ran
