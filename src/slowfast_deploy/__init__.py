"""slowfast-deploy: SlowFast R50 8x8 (Kinetics-400) with mmaction2 parity on any runtime.

Importing the package needs only numpy; torch, OpenCV and the runtimes load when used.

    import slowfast_deploy as sd
    model = sd.open_model("slowfast_int8.xml")
    for p in model.predict(["a.mp4"], views=30):
        print(p.video, p.topk)
    timelines = sd.timeline(["match.mp4"], model)         # model.timeline(...) too
    summary = sd.evaluate("videos/", "list.txt", model, output="r.jsonl")
    with sd.watch(["rtsp://127.0.0.1:8554/cam"], model) as events:   # model.watch(...) too
        for event in events:
            print(event.to_dict())
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

from slowfast_deploy import timeline as _timeline_package  # a docstring: cheap
from slowfast_deploy._optional import package_version
from slowfast_deploy.errors import SlowFastDeployError as SlowFastDeployError
from slowfast_deploy.specs import SINGLE_VIEW as SINGLE_VIEW
from slowfast_deploy.specs import SLOWFAST_R50_8X8 as SLOWFAST_R50_8X8
from slowfast_deploy.specs import THIRTY_VIEW as THIRTY_VIEW

if TYPE_CHECKING:  # what mypy and IDEs see; at run time the API loads on first use (below)
    from slowfast_deploy.api import Model as Model
    from slowfast_deploy.api import Prediction as Prediction
    from slowfast_deploy.api import Timelines as Timelines
    from slowfast_deploy.api import Watch as Watch
    from slowfast_deploy.api import evaluate as evaluate
    from slowfast_deploy.api import open_model as open_model
    from slowfast_deploy.api import timeline as timeline
    from slowfast_deploy.api import watch as watch

    # sd.serve (the serve work): `from slowfast_deploy.api import serve as serve` here, "serve"
    # in _API below, and the subpackage made callable as `timeline` is (see _CallablePackage)

_API = ("Model", "Prediction", "Timelines", "Watch", "evaluate", "open_model", "watch")
__all__ = [
    "SINGLE_VIEW",
    "SLOWFAST_R50_8X8",
    "THIRTY_VIEW",
    "SlowFastDeployError",
    *_API,
    "timeline",
]


def __getattr__(name: str) -> Any:  # the API loads OpenCV and the decoders: only when used
    if name in _API:
        from slowfast_deploy import api

        return getattr(api, name)
    raise AttributeError(f"module 'slowfast_deploy' has no attribute {name!r}")


class _CallablePackage(types.ModuleType):
    """``sd.timeline`` is both the ``slowfast_deploy.timeline`` package and the function
    ``api.timeline``: Python keeps one attribute per name on a package, and importing the
    subpackage sets it, so the package itself is made callable (imports, ``mock.patch`` and
    ``monkeypatch`` paths through it keep working)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from slowfast_deploy import api

        return getattr(api, self.__name__.rpartition(".")[2])(*args, **kwargs)


_timeline_package.__class__ = _CallablePackage  # sd.timeline: the package, callable

__version__ = package_version()
