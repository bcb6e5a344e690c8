"""One source of truth: committed files generated from herd.api must match it."""

from __future__ import annotations

import pathlib

import yaml

from herd import api
from herd.crd import kopf_peering_crds, webservice_crd

REPO = pathlib.Path(__file__).resolve().parents[2]
COMMITTED_CRD = REPO / "charts" / "herd" / "crds" / "webservices.herd.dev.yaml"


def test_committed_crd_is_generated_from_the_api():
    committed = yaml.safe_load(COMMITTED_CRD.read_text())
    assert committed == webservice_crd(), "run `make generate` and commit the result"


def test_committed_peering_crds_are_generated():
    committed = list(
        yaml.safe_load_all((COMMITTED_CRD.parent / "kopfpeerings.kopf.dev.yaml").read_text())
    )
    assert committed == kopf_peering_crds(), "run `make generate` and commit the result"


def test_every_field_has_a_description():
    missing = [path for path, field in api.ROOT.walk() if not field.description.strip()]
    assert missing == []


def test_every_default_satisfies_its_own_enum_and_bounds():
    for path, field in api.ROOT.walk():
        if not field.has_default or isinstance(field.default, dict):
            continue
        if field.enum:
            assert field.default in field.enum, path
        if field.minimum is not None:
            assert field.default >= field.minimum, path
        if field.maximum is not None:
            assert field.default <= field.maximum, path


def test_committed_api_reference_is_generated_from_the_api():
    from herd.apidocs import render

    committed = (REPO / "docs" / "api.md").read_text()
    assert committed == render(), "run `make generate` and commit the result"
