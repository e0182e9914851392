"""Island log events: their JSON round-trips bit for bit, anything else is refused by name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from forex_assets.strategies.islands.events import (
    Done,
    Generation,
    Inject,
    Start,
    Tally,
    decode_event,
    encode_event,
    tally,
)

# Floats whose shortest repr has all 17 digits, or that sit at the ends of the range.
AWKWARD = np.array([[0.1 + 0.2, 1 / 3], [5e-324, 1e300], [-0.0, np.nextafter(1.0, 2.0)]])
EVENTS = (
    Start(0, "initial", 6, 0.3, np.array([0.1 + 0.2, 2 / 3]), ()),
    Start(2, "small", 9, 0.3 * 0.01**0.7, np.array([0.5, 0.25]), ("tolfun", "tolx")),
    Inject(1, AWKWARD[:2]),
    Generation(1, AWKWARD, np.array([1e300, 0.1 + 0.7, 1e-17])),
    Done(("flat fitness",)),
)


@pytest.mark.parametrize("event", EVENTS, ids=lambda event: event.kind)
def test_an_event_survives_its_json_bit_for_bit(event):
    written = json.dumps(encode_event(event), allow_nan=False)
    decoded = decode_event(json.loads(written), dim=2, island=0)
    assert type(decoded) is type(event)
    for name, value in vars(event).items():
        if isinstance(value, np.ndarray):
            assert getattr(decoded, name).tobytes() == value.astype(float).tobytes()
        else:
            assert getattr(decoded, name) == value
    assert encode_event(decoded) == encode_event(event)


START = encode_event(EVENTS[1])
GENERATION = encode_event(EVENTS[3])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, 2], r"island 3: \[1, 2\] is not a logged event"),
        ({**START, "kind": "restart"}, "'kind': 'restart'.* is not a logged event"),
        ({**START, "extra": 1}, "is not a logged event"),
        ({k: v for k, v in GENERATION.items() if k != "f"}, "is not a logged event"),
        ({**START, "popsize": True}, "start event: popsize=True is not an integer >= 1"),
        ({**START, "restart": -1}, "restart=-1 is not an integer >= 0"),
        ({**START, "regime": "medium"}, "regime='medium' is not one of"),
        ({**START, "sigma": 0}, "sigma=0 is not a positive step size"),
        ({**START, "sigma": 10**400}, "sigma=1000.* is not a positive step size"),
        ({**START, "after": "tolx"}, "after=tolx is not a list of stop-condition names"),
        ({**START, "mean": [0.5, 0.5, 0.5]}, r"mean has shape \(3,\), expected \(2,\)"),
        ({**START, "mean": [[0.5, 0.5]]}, r"mean has shape \(1, 2\), expected \(2,\)"),
        ({**GENERATION, "epoch": 1.0}, "generation event: epoch=1.0 is not an integer"),
        ({**GENERATION, "X": [[0.1, 0.2], [0.3]]}, "X is not an array of numbers"),
        ({**GENERATION, "X": [[0.1, 0.2, 0.3]] * 3}, r"X has shape \(3, 3\), expected \(n, 2\)"),
        ({**GENERATION, "f": [1.0, 2.0]}, r"f has shape \(2,\), expected \(3,\)"),
        ({**encode_event(EVENTS[2]), "X": [0.1, 0.2]}, r"inject event: X has shape \(2,\)"),
    ],
)
def test_a_value_that_is_no_event_is_refused_naming_what_is_wrong(value, message):
    with pytest.raises(ValueError, match=message) as error:
        decode_event(value, dim=2, island=3)
    assert str(error.value).startswith("island 3")


def test_the_tally_of_a_log_counts_its_current_run():
    assert tally([]) == Tally()
    log = [EVENTS[0], EVENTS[3], EVENTS[2], EVENTS[3], EVENTS[1], EVENTS[3]]
    assert tally(log) == Tally(generations=3, evaluations=9, popsize=9, restart=2, done=False)
    assert tally([*log, EVENTS[4]]).done
