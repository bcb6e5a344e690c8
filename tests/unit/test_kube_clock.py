"""The API server's clock, read from its answers' Date header."""

import datetime

from herd.kube import Kube


def test_the_date_of_the_last_answer_is_the_clock():
    kube = Kube(client=None)  # type: ignore[arg-type]
    assert kube.server_time() is None  # no answer yet: the caller's clock
    kube._clock.seen = "Wed, 02 Dec 2026 01:00:00 GMT"
    expected = datetime.datetime(2026, 12, 2, 1, 0, tzinfo=datetime.UTC).timestamp()
    assert kube.server_time() == expected
    kube._clock.seen = "garbage"
    assert kube.server_time() is None
