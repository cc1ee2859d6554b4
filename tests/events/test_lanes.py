"""The state lanes' pure rules (events.domain.lanes): one lane order and one palette per state
machine."""

from __future__ import annotations

from events.domain.lanes import colour, lane_order, palette


def test_it_orders_the_states_of_jobs_that_disagree_the_same_way_whichever_is_shown() -> None:
    one, two = ["Validate", "Enrich", "Charge"], ["Enrich", "Validate", "Charge", "Ship"]

    expected = ["Enrich", "Validate", "Charge", "Ship"]  # Enrich and Validate tie: by name

    assert lane_order([one, two]) == lane_order([two, one]) == expected


def test_it_gives_each_state_its_own_colour_first_come_in_the_lane_order() -> None:
    names = [f"State{n}" for n in range(8)]

    colours = palette(names)

    assert sorted(colours.values()) == list(range(8))
    assert colours[names[0]] == colour(names[0])  # the first keeps the colour it asks for
    assert palette(names) == colours  # and the same names always get the same colours
    assert set(palette([*names, "Ninth"]).values()) == set(range(8))  # past 8, they repeat
