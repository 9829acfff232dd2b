"""Live streams: sources, per-stream windows, cross-stream batching, events (``watch``)."""

from __future__ import annotations

from slowfast_deploy.live.run import Watch as Watch
from slowfast_deploy.live.run import WatchOptions as WatchOptions
from slowfast_deploy.live.run import watch as watch
from slowfast_deploy.live.sources import Source as Source
from slowfast_deploy.live.sources import StreamError as StreamError
from slowfast_deploy.live.sources import parse_source as parse_source
from slowfast_deploy.live.sources import read_sources_file as read_sources_file
