"""The writer's flow control on simulated time: requests in flight, the pace, the WCU cap."""

from __future__ import annotations

import pytest
from fakes import FakeClock

from resumable_import import flow as flow_module
from resumable_import.flow import BETA, Bucket, Flow


def sending(flow: Flow, clock: FakeClock, rate: float, seconds: float) -> int:
    """Send 25-item requests at `rate` items/s for `seconds`; the last request's number."""
    number = 0
    for _ in range(int(rate * seconds / 25)):
        number = flow.sent(25, clock())
        clock.sleep(25 / rate)
    return number


def test_unpaced_until_the_first_throttle() -> None:
    clock = FakeClock()
    flow = Flow(16, None, clock)
    assert (flow.pace, flow.gated, flow.limit) == (None, False, 16)
    assert flow.due(25, 0, clock()) == 0


def test_a_throttle_cuts_the_pace_to_beta_of_the_rate_sent() -> None:
    clock = FakeClock()
    flow = Flow(16, None, clock)
    number = sending(flow, clock, 4000, 1.0)
    flow.throttle(number)
    assert flow.gated and flow.limit == 8
    assert flow.pace == pytest.approx(BETA * 4000, rel=0.05)


def test_only_requests_sent_after_a_cut_cut_again() -> None:
    clock = FakeClock()
    flow = Flow(16, None, clock)
    before = sending(flow, clock, 4000, 1.0)
    flow.throttle(before - 3)
    pace = flow.pace
    flow.throttle(before - 1)  # on its way when the pace dropped: no news
    flow.throttle(before)
    assert (flow.pace, flow.limit, flow.throttled) == (pace, 8, 3)
    after = sending(flow, clock, 2800, 0.5)
    flow.throttle(after)
    assert flow.limit == 4
    assert flow.pace == pytest.approx(BETA * 2800, rel=0.05)


def test_the_pace_regrows_along_a_cubic_back_to_where_it_was_cut_then_beyond() -> None:
    clock = FakeClock()
    flow = Flow(16, None, clock)
    flow.throttle(sending(flow, clock, 1500, 1.0))
    cut = flow.pace
    assert cut is not None
    paces = []
    for _ in range(120):  # twelve seconds of answers, sending at the pace
        sending(flow, clock, flow.pace or 0, 0.1)
        flow.answered()
        paces.append(flow.pace or 0)
    k = (1500 * (1 - BETA) / flow_module.SCALE) ** (1 / 3)  # back at 1,500 after K seconds
    assert paces == sorted(paces)
    assert paces[int(k * 10) - 5] < 1500 < paces[int(k * 10) + 5]
    assert paces[int(k * 10)] == pytest.approx(1500, rel=0.02)  # flat near where it was cut
    assert paces[-1] > 2 * 1500  # and beyond, to find more capacity


def test_the_pace_is_lifted_far_above_what_a_client_sends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(flow_module, "MAX_PACE", 5000.0)
    clock = FakeClock()
    flow = Flow(16, None, clock)
    flow.throttle(sending(flow, clock, 1500, 1.0))
    for _ in range(300):
        sending(flow, clock, flow.pace or 10_000, 0.1)
        flow.answered()
        if flow.pace is None:
            break
    assert flow.pace is None and not flow.gated and flow.limit == 16


def test_clean_answers_win_the_requests_in_flight_back_one_round_at_a_time() -> None:
    clock = FakeClock()
    flow = Flow(16, None, clock)
    flow.throttle(flow.sent(25, clock()))
    flow.throttle(flow.sent(25, clock()))
    assert flow.limit == 4
    answers = 0
    while flow.limit < 8:
        flow.answered()
        answers += 1
    assert 22 <= answers <= 26  # about a round of `limit` answers for each request more
    for _ in range(200):
        flow.answered()
    assert flow.limit == 16


def test_the_wcu_cap_spaces_sends_out_on_the_clock() -> None:
    clock = FakeClock()
    flow = Flow(4, 50, clock)
    assert flow.gated
    sent = 0
    while sent < 200:  # 200 units at 50/s, the first 50 from a full bucket
        if wait := flow.due(25, 50, clock()):
            clock.sleep(wait)
        else:
            sent += 50
    assert clock() - 1000.0 == pytest.approx(3.0)


def test_a_bucket_does_not_wait_for_rounding_errors() -> None:
    bucket = Bucket(1500.0, 1000.0, window=0.1, full=False)
    wait = bucket.due(25, 1000.0)
    assert wait == pytest.approx(25 / 1500)
    assert bucket.due(25, 1000.0 + wait * (1 - 1e-12)) == 0
