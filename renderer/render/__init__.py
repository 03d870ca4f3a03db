"""One render, in whatever process runs it: the job, drawing, PNG encoding, board modules, containment, limits.

Knows nothing of the board file's loading, the store, the pages or the daemon."""
