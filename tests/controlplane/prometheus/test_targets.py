"""``GET /api/v1/prometheus/targets``: Prometheus' HTTP service-discovery format, built from
the registered engines, and the control plane itself."""

from __future__ import annotations

from fastapi.testclient import TestClient

from controlplane.domain import Role
from controlplane.prometheus.targets import EngineEntry
from controlplane.prometheus.targets import engine_group
from tests.fixtures.api import TokenMaker


def test_engine_labels_address_path_and_query() -> None:
    group = engine_group(
        EngineEntry(
            name="llm-a",
            kind="vllm",
            metrics_url="https://gpu-1.example:8443/prom/metrics?format=text",
            labels={"team": "search", "job": "mine", "__address__": "evil:1", "engine": "x"},
        )
    )
    assert group.as_json() == {
        "targets": ["gpu-1.example:8443"],
        "labels": {
            "team": "search",
            "__scheme__": "https",
            "__metrics_path__": "/prom/metrics",
            "__param_format": "text",
            "job": "cplane-engines",
            "engine": "llm-a",
            "kind": "vllm",
            "__meta_cplane_role": "engine",
        },
    }


def test_default_ports_and_ipv6() -> None:
    plain = engine_group(EngineEntry("a", "reference", "http://10.0.0.5/metrics", {}))
    assert plain.targets == ("10.0.0.5:80",)
    v6 = engine_group(EngineEntry("b", "reference", "http://[::1]:9000/metrics", {}))
    assert v6.targets == ("[::1]:9000",)


def test_viewer_reads_every_engine_and_the_control_plane(
    client: TestClient, auth: TokenMaker
) -> None:
    operator = auth(Role.operator)
    for name, url in (("zeta", "http://127.0.0.1:8001"), ("alpha", "http://127.0.0.1:8002")):
        body = {"name": name, "kind": "reference", "url": url, "labels": {"gpu": "0"}}
        assert client.post("/api/v1/engines", json=body, headers=operator).status_code == 201
    response = client.get("/api/v1/prometheus/targets", headers=auth(Role.viewer))
    assert response.status_code == 200
    groups = response.json()
    assert groups[0] == {
        "targets": ["testserver:80"],
        "labels": {
            "__scheme__": "http",
            "__metrics_path__": "/metrics",
            "job": "cplane",
            "__meta_cplane_role": "controlplane",
        },
    }
    assert [g["labels"]["engine"] for g in groups[1:]] == ["alpha", "zeta"]
    assert groups[1]["targets"] == ["127.0.0.1:8002"]
    assert groups[1]["labels"]["gpu"] == "0"
    assert groups[1]["labels"]["__metrics_path__"] == "/metrics"


def test_targets_and_rules_need_a_token(client: TestClient) -> None:
    assert client.get("/api/v1/prometheus/targets").status_code == 401
    assert client.get("/api/v1/prometheus/rules").status_code == 401
