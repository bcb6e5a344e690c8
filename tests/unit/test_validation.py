"""Offline admission (herd render): the cases the API server refuses in
tests/integration/test_bad_input.py are refused here too, with the same words."""

import pytest

from herd.validation import errors
from tests.integration.test_bad_input import BASE, REJECTED

#: Checks the API server makes beyond the CRD (object names are DNS subdomains everywhere).
SERVER_ONLY = {"Upper-Name"}


@pytest.mark.parametrize(("name", "spec", "message"), REJECTED, ids=[c[0] for c in REJECTED])
def test_what_the_api_server_refuses_is_refused_offline(name, spec, message):
    found = errors({"metadata": {"name": name}, "spec": spec})
    assert found, f"{name} passed offline validation"
    if name not in SERVER_ONLY:
        assert any(message in line for line in found), found


def test_a_valid_spec_passes():
    assert errors({"metadata": {"name": "web"}, "spec": BASE}) == []
