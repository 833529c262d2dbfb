"""The host: who called and with what privileges, which files root alone could have written,
the caller's batch job and its cgroups, the node's GPUs, a run's state under /run/socker, the
host paths a request names, and the user database a container is given."""
