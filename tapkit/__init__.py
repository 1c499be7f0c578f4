"""tapkit: the helper module behind the time-arrow-prediction (TAP) course."""

from tapkit.data.movie import (
    DEATH,
    DIVISION,
    NO_EVENT,
    InputError,
    Movie,
    as_movie,
    check_images,
    normalize,
)

__version__ = "0.1.0"

__all__ = [
    "Movie",
    "InputError",
    "as_movie",
    "check_images",
    "normalize",
    "NO_EVENT",
    "DIVISION",
    "DEATH",
    "__version__",
]
