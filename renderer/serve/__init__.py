"""The daemon's HTTP surface: the static file server and what a request may read."""
