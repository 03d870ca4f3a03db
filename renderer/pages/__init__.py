"""What a viewer reads: the page model, templates, manifests (`status.json`, `status/`), groups, `plotboard status`."""
