"""The chart grants the operator exactly what herd.kinds says it reads and writes."""

import pathlib
import re

import yaml

from herd import kinds

HELPERS = pathlib.Path(__file__).parents[2] / "charts/herd/templates/_helpers.tpl"
CHILD_VERBS = {"get", "list", "watch", "create", "patch", "delete"}
OBSERVED_VERBS = {"get", "list", "watch"}


def namespaced_rules() -> list[dict]:
    text = HELPERS.read_text()
    block = re.search(r'define "herd.namespacedRules" -}}\n(.*?)\{\{- end', text, re.S)
    assert block, "herd.namespacedRules is not in _helpers.tpl"
    return yaml.safe_load(block.group(1))


def granted() -> dict[tuple[str, str], set[str]]:
    verbs: dict[tuple[str, str], set[str]] = {}
    for rule in namespaced_rules():
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                verbs.setdefault((group, resource), set()).update(rule["verbs"])
    return verbs


def test_every_child_kind_can_be_watched_applied_and_pruned():
    rules = granted()
    for kind in kinds.CHILDREN:
        assert rules.get((kind.group, kind.plural)) == CHILD_VERBS, kind


def test_every_observed_kind_can_be_read_and_watched_only():
    rules = granted()
    for kind in kinds.OBSERVED:
        assert rules.get((kind.group, kind.plural)) == OBSERVED_VERBS, kind


def test_nothing_is_granted_beyond_the_kinds_herd_uses():
    webservice = kinds.WEBSERVICE
    known = {(k.group, k.plural) for k in (*kinds.CHILDREN, *kinds.OBSERVED)} | {
        (webservice.group, webservice.plural),
        (webservice.group, f"{webservice.plural}/status"),
        (webservice.group, f"{webservice.plural}/scale"),
        ("", "events"),
    }
    assert set(granted()) == known
