"""socker prune: the images socker pulled that are no longer allowed and that no container uses go.

Only what socker pulled (`pulled`) is considered, and of it only the names its
pull gave: an image an administrator loaded or tagged otherwise stays. Run as
root, from a cron job or a systemd timer; it says on stdout what it removed and
what it kept in use, and writes an audit record for each image it removed.
"""

import sys

from .. import audit, imageref, policy
from ..errors import Conflict, NotFound
from . import pulled


def prune(settings, engine, out=sys.stdout):
    for pull in pulled.every():
        reference = imageref.parse(pull.reference)
        shown = reference.familiar
        image = engine.image(reference.engine_name)
        if image is None or pull.image_id not in (None, image["Id"]):
            pulled.forget(pull)  # gone already, or someone pulled it anew since
            continue
        if policy.is_allowed(reference, settings):
            continue
        users = engine.containers_using(image["Id"])
        if users:
            print(f"kept {shown}: used by {len(users)} container(s)", file=out)
            continue
        try:
            # The name it was pulled by, and the digest the pull added: every name the pull gave.
            # A record without a digest is of a pull whose puller died before it knew it.
            digests = [f"{reference.repository}@{pull.digest}"] if pull.digest else []
            for name in dict.fromkeys((reference.engine_name, *digests)):
                try:
                    engine.remove_image(name)
                except NotFound:
                    pass
        except Conflict:
            print(f"kept {shown}: in use", file=out)
            continue
        pulled.forget(pull)
        audit.record(settings.audit_facility, {"action": "prune", "user": "root", "image": shown,
                                               "image_id": image["Id"], "result": "removed"})
        print(f"removed {shown} ({image['Id'].removeprefix('sha256:')[:12]})", file=out)
