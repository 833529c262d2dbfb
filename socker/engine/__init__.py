"""The Docker engine, reached only through the socket the admin configured.

The only package that imports `docker`, in four parts: `bodies` builds what socker asks
(pure), `connection` reaches the socket (root only to connect), `streams` reads the long
answers (a container's stdio, a pull's progress), and `translate` turns whatever goes wrong
into socker's typed errors. `client.Engine` puts them together, one method per request.
"""

from .client import Engine

__all__ = ["Engine"]
