"""lab.pings.losses: what counts as a lost ping in the lab's loss tables."""

from __future__ import annotations

from meshlab import losses

HEAD = "PING 10.1.1.2 (10.1.1.2) 56(84) bytes of data.\n"


def reply(seq: int) -> str:
    return f"64 bytes from 10.1.1.2: icmp_seq={seq} ttl=64 time=0.2 ms\n"


def tail(sent: int, received: int) -> str:
    return f"\n--- 10.1.1.2 ping statistics ---\n{sent} packets transmitted, {received} received\n"


def test_a_reply_still_in_flight_at_sigint_is_not_a_loss() -> None:
    # ping counts the request it sent just before SIGINT; its reply had no time to come back.
    out = HEAD + "".join(reply(s) for s in range(1, 10)) + tail(10, 9)
    assert losses(out) == (10, 0, 0)


def test_gaps_inside_and_before_the_last_reply_are_losses() -> None:
    out = HEAD + "".join(reply(s) for s in (1, 2, 5, 6, 7)) + tail(11, 5)
    # 3 and 4 lost inside, 8 to 10 at the end; 11, the last one sent, may still be in flight.
    assert losses(out) == (11, 5, 3)


def test_no_reply_at_all_loses_everything() -> None:
    assert losses(HEAD + tail(7, 0)) == (7, 7, 7)
