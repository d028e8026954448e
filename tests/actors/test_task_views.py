"""A just-submitted task's queue position, computed without walking the queue, is what a read of the whole queue
shows for it."""

from __future__ import annotations

import random

from actors.task_views import position_of_last, queue_positions


def test_the_last_tasks_position_matches_the_whole_queues():
    rng = random.Random(7)
    for _ in range(200):
        queue = [(f"t{index}", "1") for index in range(rng.randint(1, 30))]
        groups = {key: rng.choice([None, None, "g1", "g2"]) for key in queue}
        last = queue[-1]
        assert position_of_last(len(queue), groups, groups[last]) == queue_positions(queue, groups)[last]
