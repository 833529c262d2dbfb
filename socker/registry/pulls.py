"""One pull per node: an allowed image that the node lacks is pulled once, however many sockers want it.

The engine is asked first: a node that has the image forks nothing. Otherwise socker
forks a puller (`puller`), a root child out of the caller's reach, which meets the
pullers of every other socker that wants the image at the node's lock on its pull
(`pulllock`): the first pulls, the others wait for it and give its outcome, or take over
if it died without a word. The caller's socker holds no lock at any time: it shows what
its puller reports, and asks the engine for the image once the puller is done. The
engine names an image only once all of it is there, so nothing half-pulled is ever found.
"""

import json
import os
import sys

from .. import policy
from ..errors import EngineError, PolicyError
from . import puller
from .progress import PullProgress


def obtain(reference, settings, engine, privileges, identity):
    """The image of the allowed imageref.Reference `reference` as the node's engine has it, pulled
    first if the node lacks it; returns (image, digest) where digest is that of the pull this socker
    caused, None if it caused none."""
    shown = reference.familiar
    image = engine.image(reference.engine_name)
    if image is not None:
        return image, None
    registry = policy.registry_for(reference, settings)
    if registry is None:
        raise PolicyError(f"image {shown} is allowed but not present on this node, and its registry "
                          f"{reference.domain} is not one socker may pull from; "
                          "ask your administrator to pull it")
    pid, reports = puller.start(puller.Order(reference, registry, settings, identity), privileges)
    try:
        last = _follow(reports, shown)
    finally:
        os.close(reports)
    os.waitpid(pid, 0)
    if last is not None and "failed" in last:
        raise EngineError(last["failed"])
    image = engine.image(reference.engine_name)
    if image is None:
        raise EngineError(f"cannot pull {shown}: " + ("the engine does not have it after pulling it" if last else
                                                      "the pull ended without a word (it was killed)"))
    return image, (last or {}).get("pulled")


def _follow(reports, shown):
    """Show what the puller reports; returns its last word, or None if it said none."""
    progress = PullProgress(shown, sys.stderr, live=sys.stderr.isatty())
    pending = b""
    while chunk := os.read(reports, 65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            report = json.loads(line)
            if "waiting" in report:
                print(f"socker: waiting for another socker to pull {shown}", file=sys.stderr, flush=True)
            elif "progress" in report:
                progress.update(report["progress"])
            elif "pulled" in report:
                progress.finished(report["pulled"])
                return report
            else:  # present, or failed
                progress.abandoned()
                return report
    progress.abandoned()
    return None
