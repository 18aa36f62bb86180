"""The consumer loop's decisions without a server: ack, nak with a growing delay, dead letter on the
last delivery or at once for undecodable input, programming errors told apart, the dedup window."""

from __future__ import annotations

import pytest

from tapio_common.errors import TapioError
from tapio_jetstream.decisions import (
    Action,
    Backoff,
    describe,
    is_programming_error,
    on_failure,
    on_handler_failure,
    on_undecodable,
    stage_of,
)
from tapio_jetstream.dedup import DedupWindow
from tapio_jetstream.delivery import Delivery, parse_reply
from tapio_jetstream.errors import DecodeError


def test_failure_before_the_last_delivery_is_a_nak_with_doubling_delay() -> None:
    backoff = Backoff(first=1.0, factor=2.0, most=5.0)
    delays = [on_failure(n, 6, "boom", backoff) for n in range(1, 6)]
    assert [d.action for d in delays] == [Action.NAK] * 5
    assert [d.delay for d in delays] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert delays[0].reason == "boom"


def test_failure_on_the_last_delivery_is_a_dead_letter_with_the_reason() -> None:
    last = on_failure(5, 5, "TypeError: bad", Backoff())
    assert last.action is Action.DEAD_LETTER
    assert last.reason == "failed 5 deliveries, last: TypeError: bad"
    assert on_failure(7, 5, "x", Backoff()).action is Action.DEAD_LETTER  # max_deliver lowered since


def test_unlimited_deliveries_never_dead_letter() -> None:
    assert on_failure(1000, -1, "x", Backoff()).action is Action.NAK


def test_bad_input_a_handler_finds_is_dead_lettered_at_once_anything_else_is_retried() -> None:
    bad = on_handler_failure(DecodeError("event e3: its context is not a valid Context"), 1, 5, Backoff())
    assert bad.action is Action.DEAD_LETTER
    assert bad.reason == "cannot decode: DecodeError: event e3: its context is not a valid Context"
    retried = on_handler_failure(KeyError("k"), 1, 5, Backoff(first=0.5))
    assert (retried.action, retried.delay) == (Action.NAK, 0.5)
    assert on_handler_failure(KeyError("k"), 5, 5, Backoff()).action is Action.DEAD_LETTER


def test_undecodable_input_is_a_dead_letter_at_once() -> None:
    d = on_undecodable("corrupt zstd payload")
    assert (d.action, d.reason) == (Action.DEAD_LETTER, "cannot decode: corrupt zstd payload")


class SinkDown(TapioError):
    stage = "sink"


def test_programming_errors_are_told_from_expected_failures() -> None:
    assert is_programming_error(TypeError("x"))
    assert is_programming_error(KeyError("k"))
    assert not is_programming_error(SinkDown("splunk answered 503"))
    assert not is_programming_error(ConnectionError("refused"))
    assert stage_of(SinkDown("x")) == "sink"
    assert stage_of(KeyError("k")) == "handle"
    assert describe(KeyError("k")) == "KeyError: 'k'"
    assert describe(ValueError("two\n lines")) == "ValueError: two lines"


def test_last_delivery_flag() -> None:
    def delivery(num_delivered: int, max_deliver: int) -> Delivery[str]:
        return Delivery(["x"], "S", 1, "s", {}, num_delivered, max_deliver)

    assert delivery(5, 5).last_delivery
    assert not delivery(4, 5).last_delivery
    assert not delivery(9, -1).last_delivery


def test_reply_subjects_are_parsed_in_both_forms() -> None:
    v1 = parse_reply("$JS.ACK.TAPIO_EVENTS.correlator.3.1042.77.1700000000000000000.12")
    assert v1 is not None
    assert (v1.stream, v1.durable, v1.num_delivered, v1.stream_seq, v1.consumer_seq, v1.pending) == (
        "TAPIO_EVENTS",
        "correlator",
        3,
        1042,
        77,
        12,
    )
    v2 = parse_reply("$JS.ACK.hub.ACCHASH.TAPIO_EVENTS.pipeline.1.5.6.1700000000000000000.0.rnd")
    assert v2 is not None
    assert (v2.stream, v2.durable, v2.num_delivered, v2.stream_seq) == ("TAPIO_EVENTS", "pipeline", 1, 5)
    assert parse_reply("_INBOX.abc.1") is None
    assert parse_reply("$JS.ACK.S.d.x.1.2.3.4") is None


def test_dedup_window_passes_fresh_keys_and_takes_out_seen_ones() -> None:
    w = DedupWindow(10)
    assert w.fresh(["a", "b"]) is None  # all fresh: no list built
    w.add(["a", "b"])
    assert w.fresh(["a", "c", "b", "d"]) == [1, 3]
    assert w.fresh(["c", "c", "e"]) == [0, 2]  # a repeat inside one message passes once


def test_dedup_window_takes_out_the_pending_keys_of_a_batch_without_learning_them() -> None:
    w = DedupWindow(10)
    pending = {"a", "b"}  # keys of an earlier message of the same batch, not handled yet
    assert w.fresh(["c", "d"], pending) is None
    assert w.fresh(["a", "c", "b"], pending) == [1]
    assert "a" not in w  # only a handled message's keys are remembered


def test_dedup_window_is_bounded_and_remembers_at_least_half() -> None:
    w = DedupWindow(100)
    for i in range(1000):
        w.add([f"id-{i}"])
        assert len(w) <= 100
    assert all(f"id-{i}" in w for i in range(950, 1000))
    assert "id-0" not in w


def test_dedup_window_off() -> None:
    w = DedupWindow(0)
    w.add(["a"])
    assert w.fresh(["a", "a"]) is None
    with pytest.raises(ValueError, match=">= 0"):
        DedupWindow(-1)
