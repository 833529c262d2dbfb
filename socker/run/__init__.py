"""One container's life: the runner (create, attach, start, wait, remove), the guardian that
tidies up if socker dies, and the caller's side of the session (stdio, terminal, signals)."""
