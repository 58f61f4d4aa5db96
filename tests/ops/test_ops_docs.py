"""The operator's documents stay true: the runbook lists every setting, and the dashboard and alert
rules name only metrics the service exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from api import metrics
from api.settings import AppSettings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _exported() -> set[str]:
    registry = metrics.Metrics().registry
    names = {m.name for m in registry.collect()} | {"cv_db_pool_checked_out", "cv_db_pool_size"}
    counters = {f"{n}_total" for n in names}
    buckets = {f"{n}_bucket" for n in names}
    return names | counters | buckets


def test_the_runbook_lists_every_setting_with_its_environment_variable() -> None:
    text = (DOCS / "operations.md").read_text()
    for name in AppSettings.model_fields:
        assert f"CITIZEN_VAULT_{name.upper()}" in text, name


def test_dashboard_and_alerts_use_only_exported_metrics() -> None:
    exported = _exported() | {"cv_interaction_sla_breaches_total"}  # issue 15's, named in alerts.yml
    dashboard = json.loads((DOCS / "ops" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = yaml.safe_load((DOCS / "ops" / "alerts.yml").read_text())["groups"][0]["rules"]
    exprs += [r["expr"] for r in rules]
    used = {m for e in exprs for m in re.findall(r"\bcv_[a-z_]+", e)}
    assert used and used <= exported, used - exported
    assert all(r["annotations"]["runbook"].startswith("docs/operations.md#") for r in rules)
