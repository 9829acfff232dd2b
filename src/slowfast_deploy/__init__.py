"""slowfast-deploy: SlowFast R50 8x8 (Kinetics-400) with mmaction2 parity on any runtime.

Importing the package needs only numpy; torch, OpenCV and the runtimes load when used.

    import slowfast_deploy as sd
    model = sd.open_model("slowfast_int8.xml")
    for p in model.predict(["a.mp4"], views=30):
        print(p.video, p.topk)
    summary = sd.evaluate("videos/", "list.txt", "slowfast_int8.xml", output="r.jsonl")
"""

from __future__ import annotations

from typing import Any

from slowfast_deploy._optional import package_version
from slowfast_deploy.errors import SlowFastDeployError as SlowFastDeployError
from slowfast_deploy.specs import SINGLE_VIEW as SINGLE_VIEW
from slowfast_deploy.specs import SLOWFAST_R50_8X8 as SLOWFAST_R50_8X8
from slowfast_deploy.specs import THIRTY_VIEW as THIRTY_VIEW

_API = ("Model", "Prediction", "Watch", "evaluate", "open_model", "watch")
__all__ = ["SINGLE_VIEW", "SLOWFAST_R50_8X8", "THIRTY_VIEW", "SlowFastDeployError", *_API]


def __getattr__(name: str) -> Any:  # the API loads OpenCV and the decoders: only when used
    if name in _API:
        from slowfast_deploy import api

        return getattr(api, name)
    raise AttributeError(f"module 'slowfast_deploy' has no attribute {name!r}")


__version__ = package_version()
