"""Telling people: each chart's changes of state judged by the daemon, sent as webhooks and mails (`[[alerts]]`)."""
