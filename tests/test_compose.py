"""docker-compose.yml and deploy/: what can be checked without a Docker engine.

The compose file is valid against the Compose Specification's JSON schema (the copy check-jsonschema
ships), its services, ports, volumes and secrets agree with each other, every variable the bot gets
is a setting of bot/settings.py, Alertmanager's config passes `amtool check-config` and reaches the
bot with the token the bot checks, and Prometheus' config and rules pass `promtool`. The binaries
come from Debian (scripts/test-deps installs them); a missing one fails the test, never skips it.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import shutil
import subprocess
from functools import cache
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from bot.catalog.runbooks import load_runbooks
from bot.core.incident import Severity, severity_from_label
from bot.core.runbook_links import link_runbook
from bot.settings import Settings
from tests.harness import ROOT

COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
AM_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
PROM_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
RULES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
SETTINGS = {name.upper() for name in Settings.model_fields}
COMPOSE_ONLY = {"POSTGRES_PASSWORD": "PostgreSQL's password, shared by the postgres and bot services"}


@cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def service(name: str) -> dict:
    return compose()["services"][name]


def tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is needed for this test and is not installed: run scripts/test-deps")
    return found


def test_compose_file_matches_the_compose_spec_schema():
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(vendored.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose())]
    assert not errors, errors


def test_the_four_services_and_how_they_start():
    assert set(compose()["services"]) == {"bot", "postgres", "alertmanager", "prometheus"}
    assert service("bot")["build"] == "."
    assert service("bot")["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert service("postgres")["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(service("postgres")["healthcheck"]["test"])
    assert service("alertmanager")["image"].startswith("prom/alertmanager:")
    assert service("prometheus")["image"].startswith("prom/prometheus:")


def test_every_variable_the_bot_gets_is_a_setting():
    env = service("bot")["environment"]
    assert set(env) <= SETTINGS, set(env) - SETTINGS
    interpolated = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    secret_sources = {s["environment"] for s in compose()["secrets"].values()}
    assert interpolated | secret_sources <= SETTINGS | set(COMPOSE_ONLY), interpolated | secret_sources
    env_file = service("bot")["env_file"][0]
    assert env_file["path"] == ".env" and env_file["required"] is False


def defaults(text: str) -> str:
    """`${VAR:-default}` replaced by its default, as compose does when VAR is unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


def test_the_bot_uses_the_postgres_service():
    pg = service("postgres")["environment"]
    url = urlsplit(defaults(service("bot")["environment"]["DATABASE_URL"]))
    assert url.scheme == "postgresql" and url.hostname == "postgres" and url.port == 5432
    assert url.username == pg["POSTGRES_USER"] and url.path == f"/{pg['POSTGRES_DB']}"
    assert url.password == defaults(pg["POSTGRES_PASSWORD"])


def test_ports_volumes_and_mounted_files_are_consistent():
    assert "8080:8080" in service("bot")["ports"] and Settings.model_fields["port"].default == 8080
    assert (
        service("bot")["environment"]["DATA_DIR"] == "/data" and "bot-data:/data" in service("bot")["volumes"]
    )
    alertmanager_url = urlsplit(service("bot")["environment"]["ALERTMANAGER_URL"])
    assert (alertmanager_url.hostname, alertmanager_url.port) == ("alertmanager", 9093)
    assert "9093:9093" in service("alertmanager")["ports"]
    declared = set(compose()["volumes"])
    for name, svc in compose()["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
    for svc in compose()["services"].values():
        assert set(svc.get("secrets", [])) <= set(compose()["secrets"])


def test_alertmanager_sends_to_the_bot_with_its_token():
    config = yaml.safe_load(AM_CONFIG.read_text())
    receiver = next(r for r in config["receivers"] if r["name"] == config["route"]["receiver"])
    (hook,) = receiver["webhook_configs"]
    url = urlsplit(hook["url"])
    assert (url.hostname, url.port, url.path) == ("bot", 8080, "/webhooks/alertmanager")
    assert hook["send_resolved"] is True
    # Bounded, so a storm's notification stays under the bot's Alertmanager body limit (about 5 KiB
    # per alert).
    assert 0 < hook["max_alerts"] * 5 * 1024 < Settings.model_fields["alertmanager_max_body_bytes"].default
    auth = hook["http_config"]["authorization"]
    (secret,) = service("alertmanager")["secrets"]
    assert auth["type"] == "Bearer" and auth["credentials_file"] == f"/run/secrets/{secret}"
    assert compose()["secrets"][secret]["environment"] == "ALERTMANAGER_TOKEN"
    mounted = {v.split(":")[1]: v.split(":")[0] for v in service("alertmanager")["volumes"]}
    assert mounted["/etc/alertmanager/alertmanager.yml"] == "./deploy/alertmanager/alertmanager.yml"
    watchdog = next(r for r in config["route"]["routes"] if 'alertname="Watchdog"' in r["matchers"])
    assert Settings.model_fields["heartbeat_alertname"].default == "Watchdog" and watchdog["repeat_interval"]


def test_alertmanager_config_passes_amtool():
    result = subprocess.run([tool("amtool"), "check-config", str(AM_CONFIG)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_and_rules_pass_promtool():
    promtool = tool("promtool")
    config = subprocess.run([promtool, "check", "config", str(PROM_CONFIG)], capture_output=True, text=True)
    assert config.returncode == 0, config.stdout + config.stderr
    rules = subprocess.run([promtool, "check", "rules", *map(str, RULES)], capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    prom = yaml.safe_load(PROM_CONFIG.read_text())
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]


def test_every_example_alert_pages_at_its_severity_and_has_a_runbook():
    catalog, problems = load_runbooks(ROOT / "runbooks")
    assert not problems
    alerts = [r for path in RULES for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]
    assert {"Watchdog", "HighErrorRate", "RedisPoolExhaustion", "WeaviateDown"} <= {
        a["alert"] for a in alerts
    }
    for alert in alerts:
        if alert["alert"] == "Watchdog":
            continue  # the heartbeat never opens an incident
        label = alert["labels"]["severity"]
        assert label in ("critical", "warning", "info"), (alert["alert"], label)
        assert severity_from_label(label) in Severity
        linked = link_runbook(
            {"alertname": alert["alert"], **alert["labels"]}, alert.get("annotations", {}), catalog
        )
        assert linked.runbook is not None, f"{alert['alert']}: no runbook in runbooks/"
