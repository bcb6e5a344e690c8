"""When a child event is news to the reconciler."""

from __future__ import annotations

from herd.kinds import Ref
from herd.sightings import Sightings

KEY = ("ns", "web")
DEPLOYMENT = Ref("Deployment", "ns", "web")
SERVICE = Ref("Service", "ns", "web")


def test_an_event_showing_what_the_last_reconcile_saw_is_no_news():
    sightings = Sightings()
    sightings.saw(KEY, {DEPLOYMENT: "a", SERVICE: "s"})
    sightings.arrived(KEY, DEPLOYMENT, "a")  # its own apply coming back
    assert not sightings.news(KEY)


def test_one_unseen_event_among_seen_ones_is_news_and_is_taken():
    sightings = Sightings()
    sightings.saw(KEY, {DEPLOYMENT: "a"})
    sightings.arrived(KEY, DEPLOYMENT, "a")
    sightings.arrived(KEY, DEPLOYMENT, "b")  # the controller's status update after it
    assert sightings.news(KEY)
    assert not sightings.news(KEY)  # taken: the reconcile that follows reads afresh


def test_before_any_reconcile_everything_is_news_but_a_deletion_of_nothing():
    sightings = Sightings()
    sightings.arrived(KEY, SERVICE, "s")
    assert sightings.news(KEY)
    sightings.arrived(KEY, SERVICE, "")  # deleted, and never seen
    assert not sightings.news(KEY)


def test_a_deletion_of_what_was_seen_is_news():
    sightings = Sightings()
    sightings.saw(KEY, {SERVICE: "s"})
    sightings.arrived(KEY, SERVICE, "")
    assert sightings.news(KEY)


def test_forgetting_a_webservice_drops_its_sightings_and_events():
    sightings = Sightings()
    sightings.saw(KEY, {SERVICE: "s"})
    sightings.arrived(KEY, SERVICE, "t")
    sightings.forget(KEY)
    assert not sightings.news(KEY)
    sightings.arrived(KEY, SERVICE, "s")
    assert sightings.news(KEY)
