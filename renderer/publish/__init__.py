"""Mirroring the output folder to object storage (`[publish]`)."""
