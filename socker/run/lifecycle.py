"""A run's life in one place: its stages, how each way out is recorded, and what is cleaned.

A run goes through these stages, in order:

    config -> job -> policy -> pull -> place -> create -> run

(`place`: the cgroups, device access and pinned mounts; `run`: attach, start, stream,
wait). Its audit trail (`Trail`) says `created` when the container exists and ends with
one result word, chosen here and nowhere else:

- `refused`: the policy said no (a `PolicyError`, `UsageError` or `HostPathError` before
  `place`); nothing was made;
- `failed`: something allowed could not be done; `kind` names the stage and `reason` why;
- `interrupted`: ^C reached socker before the container ran (`kind`: the stage);
- `exited` with the container's `status`;
- `killed`: socker ended without saying how the run ended; its guardian ended it.

From the guardian's fork on, the end goes to the guardian (`Trail.hand_to`), which writes
it after it has removed what the run left, naming in `left` what it could not. The
container is named (`container`) whole from before the fork, so the guardian's copy names
it too; its ID follows as `container_id` once known.
"""

import os
from contextlib import contextmanager

from .. import audit
from ..errors import HostPathError, PolicyError, SockerError, UsageError
from ..host import cgroups, hostpaths, statedir

STAGES = ("config", "job", "policy", "pull", "place", "create", "run")
REFUSALS = (PolicyError, UsageError, HostPathError)


class Trail:
    """The audit trail of one `socker run`: its facts, its stage, and the one result that ends it."""

    def __init__(self, *, user, uid, image, command):
        self._record = audit.Record(action="run", user=user, uid=uid, job=None, image=image, command=list(command))
        self.stage = STAGES[0]
        self.ended = False
        self._guardian = None

    def hand_to(self, guardian):
        """From now on the end goes to `guardian` (forked with a copy of this trail), which writes it
        once it has removed what the run left: socker may be killed before then, the guardian not."""
        self._guardian = guardian

    def configured(self, facility):
        self._record.facility = facility

    def reached(self, stage, **facts):
        """The run has come to `stage`; `facts` learned on the way join the record."""
        assert STAGES.index(stage) >= STAGES.index(self.stage), (self.stage, stage)
        self.stage = stage
        self._record.note(**facts)

    def created(self, container_id):
        self.identified(container_id)
        self._record.write("created")
        self.reached("run")

    def identified(self, container_id):
        self._record.note(container_id=container_id[:12])

    def exited(self, status):
        self._end("exited", status=status)

    def failed(self, reason):
        self._end("failed", kind=self.stage, reason=reason)

    @contextmanager
    def ends_if_raised(self):
        """Whatever is raised inside ends the trail with the result it means, and goes on up."""
        try:
            yield self
        except REFUSALS as e:
            if STAGES.index(self.stage) < STAGES.index("place"):
                self._end("refused", reason=str(e))
            else:  # the policy has said yes by then: what goes wrong after is socker's or the host's
                self.failed(str(e))
            raise
        except KeyboardInterrupt:
            self._end("interrupted", kind=self.stage)
            raise
        except BaseException as e:
            self.failed(str(e) if isinstance(e, (SockerError, OSError)) else f"socker failed: {e!r}")
            raise

    def write_end(self, result, fields, left=()):
        """Write the end: `result` with its `fields`, naming what is `left` on the host (the guardian's)."""
        self._record.write(result, **fields, left=" ".join(left) or None)

    def _end(self, result, **fields):
        if self.ended:  # one result per trail: the first way out is the one that happened
            return
        self.ended = True
        if self._guardian is not None:
            try:
                self._guardian.tell_end(result, {key: value for key, value in fields.items() if value is not None})
                return
            except OSError:
                pass  # the guardian is gone (it never should be): the end is written here, then
        self.write_end(result, fields)


def remove_container(engine, container_id, name):
    """Remove run `name`'s container: by the ID the engine gave it, else by its name. True once it
    is gone. Not found by name alone may mean not created yet (a create interrupted or still in
    the engine), so that is not gone; not found by ID is."""
    return engine.remove(container_id or name) or container_id is not None


def tidy(name, placement):
    """Remove what socker made on the host for run `name`; returns what could not be removed. Needs root."""
    directory = statedir.path(name)
    hostpaths.unstage(os.path.join(directory, statedir.MOUNTS))
    statedir.remove(name)
    cgroups.remove_if_empty(placement.created)
    return statedir.left_behind(name)
