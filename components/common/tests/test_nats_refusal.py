"""The server's permission refusals are recognised in nats-py's error texts (connect's error callback
logs them as one ERROR line and counts them)."""

from tapio_common.nats.connect import refusal


def test_a_publish_refusal_is_named_with_its_subject() -> None:
    text = 'nats: permissions violation for publish to "$js.api.consumer.create.tapio_events"'
    assert refusal(text) == 'permissions violation for publish to "$js.api.consumer.create.tapio_events"'


def test_a_subscribe_refusal_in_the_servers_own_case() -> None:
    text = "'Permissions Violation for Subscription to \"tapio.events.>\"'"
    assert refusal(text) == 'Permissions Violation for Subscription to "tapio.events.>"'


def test_other_errors_are_no_refusal() -> None:
    assert refusal("unexpected EOF") is None
    assert refusal("authorization violation") is None
