"""Text the engine reads exactly as socker does: valid UTF-8, nothing else.

socker receives argv, the environment and paths as bytes, which Python turns
into text with lone surrogates standing for bytes that are not UTF-8. The
engine decodes the JSON socker sends with Go, which turns each of those into
U+FFFD: two destinations that differ for socker's checks would be one for the
engine. So no such string gets as far as a check.
"""

from .errors import UsageError


def is_valid(text):
    """True if `text` is valid UTF-8 text: what the engine reads is what socker checked."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def require(text, what):
    """`text`, or UsageError naming `what` if the engine would read it otherwise."""
    if not is_valid(text):
        raise UsageError(f"{what} is not valid UTF-8: the engine would read it otherwise")
    return text
