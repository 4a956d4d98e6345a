"""Back-pressure of the virtual clock: the host's report and the notifications in flight.

Wall time is a fake here, so each expected virtual time is exact arithmetic
(virtual = (wall - held) x speed, capped at what the host has handled + ``max_backlog_s``).
"""

from __future__ import annotations

import pytest

from imuhip.sources.virtual import clock as clock_mod
from imuhip.sources.virtual.clock import VirtualClock


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr(clock_mod.time, "monotonic", lambda: now[0])
    return now


def _clock(wall: list[float]) -> VirtualClock:
    c = VirtualClock(10.0, max_backlog_s=0.5, max_lead_s=1e9)
    c.start()
    return c


def _two_sent(c: VirtualClock, wall: list[float]) -> None:
    """Sensor "a" sends at virtual 1.0 and 2.0; the host's queue is empty, so it reports
    everything stamped so far (the latest mark, 2.0) as handled, as ``run_live`` does."""
    wall[0] += 0.1
    c.mark(c.now_s(), "a")
    c.sent("a")
    wall[0] += 0.1
    c.mark(c.now_s(), "a")
    c.sent("a")
    c.consumed(c.host_ns())


def test_notifications_stuck_in_the_stack_hold_virtual_time(wall: list[float]) -> None:
    c = _clock(wall)
    _two_sent(c, wall)
    wall[0] += 1.0  # 12.0 without back-pressure, 2.5 with the host's report alone
    assert c.now_s() == pytest.approx(2.0)  # held at 1.0 (oldest in flight) + 0.5: stands still
    c.delivered("a")  # the 1.0 one arrived: the 2.0 one is the oldest now
    wall[0] += 1.0
    assert c.now_s() == pytest.approx(2.5)
    c.delivered("a")  # nothing in flight
    c.mark(2.5, "a")  # the sensor's next packet
    c.consumed(c.host_ns())
    wall[0] += 0.05  # time resumes from where it stood, without a burst
    assert c.now_s() == pytest.approx(3.0)
    assert c.backpressure_wall_s == pytest.approx(1.0 + 0.95)


def test_the_host_report_alone_allows_its_backlog(wall: list[float]) -> None:
    c = _clock(wall)
    _two_sent(c, wall)
    c.delivered("a")
    c.delivered("a")
    wall[0] += 1.0
    assert c.now_s() == pytest.approx(2.5)


def test_a_dropped_link_releases_its_notifications(wall: list[float]) -> None:
    c = _clock(wall)
    _two_sent(c, wall)
    wall[0] += 1.0
    assert c.now_s() == pytest.approx(2.0)
    c.link_lost("a")  # they will never arrive: time must not wait for them
    wall[0] += 1.0
    assert c.now_s() == pytest.approx(2.5)


def test_notifications_that_never_arrive_stop_holding_time_after_the_hold_limit(
    wall: list[float],
) -> None:
    c = _clock(wall)  # max_hold_wall_s: the default 15 s
    _two_sent(c, wall)  # the host swallows both (e.g. taken for a command response)
    wall[0] += 10.0
    assert c.now_s() == pytest.approx(2.0)  # still waiting for them
    assert c.in_flight_resets == 0
    wall[0] += 6.0  # 16.1 wall s since the last delivery (none): taken as lost
    c.now_s()
    assert c.in_flight_resets == 1
    c.mark(2.5, "a")  # the sensor streams on; the host handles what arrives
    c.consumed(c.host_ns())
    wall[0] += 0.05
    assert c.now_s() == pytest.approx(3.0)


def test_without_a_host_report_notifications_in_flight_do_not_hold_time(
    wall: list[float],
) -> None:
    c = _clock(wall)
    wall[0] += 0.1
    c.mark(c.now_s(), "a")
    c.sent("a")
    wall[0] += 1.0
    assert c.now_s() == pytest.approx(11.0)


async def test_no_notification_is_stamped_before_the_first_one_received(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host stamps on arrival: when a busy event loop delivers thigh_r's first notification
    (sent at 43 ms) before the pelvis's (sent at 0 ms), the pelvis's is stamped 43 ms, so the
    smallest stamp (the offline session zero) is the first packet's (the live session zero)."""
    from imuhip.sources.virtual import VirtualFleet

    fleet = VirtualFleet.create(("pelvis", "thigh_r"), use_simulator=False)
    sent = {b"p0": 0, b"r0": 43_000_000, b"p1": 60_000_000, b"r1": 73_000_000}
    for vs in fleet.sensors.values():
        monkeypatch.setattr(vs, "sent_at_ns", lambda data: sent[data])
    got = [fleet.packet_ns(p, d) for p, d in [
        ("thigh_r", b"r0"), ("pelvis", b"p0"), ("pelvis", b"p1"), ("thigh_r", b"r1"),
    ]]  # fmt: skip
    assert got == [43_000_000, 43_000_000, 60_000_000, 73_000_000]
    # in send order nothing changes
    fleet = VirtualFleet.create(("pelvis", "thigh_r"), use_simulator=False)
    for vs in fleet.sensors.values():
        monkeypatch.setattr(vs, "sent_at_ns", lambda data: sent[data])
    order = [("pelvis", b"p0"), ("thigh_r", b"r0"), ("thigh_r", b"r1"), ("pelvis", b"p1")]
    assert [fleet.packet_ns(p, d) for p, d in order] == [sent[d] for _, d in order]
