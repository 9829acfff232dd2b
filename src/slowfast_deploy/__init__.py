"""slowfast-deploy: SlowFast R50 8x8 (Kinetics-400) with mmaction2 parity on any runtime.

Importing the package needs only numpy; torch and the runtimes load when used.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from slowfast_deploy.errors import SlowFastDeployError as SlowFastDeployError
from slowfast_deploy.specs import SINGLE_VIEW as SINGLE_VIEW
from slowfast_deploy.specs import SLOWFAST_R50_8X8 as SLOWFAST_R50_8X8
from slowfast_deploy.specs import THIRTY_VIEW as THIRTY_VIEW

try:
    __version__ = version("slowfast-deploy")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
