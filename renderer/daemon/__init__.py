"""`plotboard run`: the loop, its triggers (watch, schedule, early renders, upkeep), page timing and builds' requests."""
