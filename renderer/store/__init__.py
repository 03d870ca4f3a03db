"""What is kept: records and fingerprints in `.plotboard/`, atomic publishing into the output folder, repair stamps, the lock, and the workspace a pass works in."""
