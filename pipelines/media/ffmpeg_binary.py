"""Which ffmpeg binary to run: `S2I_FFMPEG` if set, else the one bundled by imageio-ffmpeg."""

from __future__ import annotations

import os
import shutil
from functools import cache


class FfmpegNotFound(RuntimeError):
    pass


@cache
def ffmpeg_exe() -> str:
    override = os.environ.get("S2I_FFMPEG")
    if override:
        found = shutil.which(override) or (override if os.path.isfile(override) else None)
        if not found:
            raise FfmpegNotFound(
                f"S2I_FFMPEG={override!r} is not an executable file; unset it to use the ffmpeg "
                "bundled with imageio-ffmpeg, or point it at an ffmpeg binary."
            )
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()
