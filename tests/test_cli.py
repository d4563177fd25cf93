"""Interruptions during the fit: noted, then raised between steps, where TensorFlow is not running."""

import os
import signal

import pytest

from stages.lib import cli


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interruption_during_the_fit_is_raised_at_the_next_check(signal_number):
    before = signal.getsignal(signal_number)
    with pytest.raises(KeyboardInterrupt) as raised, cli.interruptions_deferred() as check:
        os.kill(os.getpid(), signal_number)
        noted_only = True  # reached: the signal itself raised nothing
        check()
    assert noted_only
    assert isinstance(raised.value, cli.Terminated) == (signal_number == signal.SIGTERM)
    assert signal.getsignal(signal_number) is before


def test_interruption_after_the_last_check_is_raised_on_leaving():
    with pytest.raises(KeyboardInterrupt), cli.interruptions_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        noted_only = True
    assert noted_only


def test_a_second_interruption_is_raised_at_once():
    after_the_second = []
    with pytest.raises(KeyboardInterrupt), cli.interruptions_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        after_the_second.append("reached")
    assert after_the_second == []
