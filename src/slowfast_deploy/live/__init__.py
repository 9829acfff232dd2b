"""Live streams: sources, per-stream windows, cross-stream batching, events and their sinks
(``watch``)."""

from __future__ import annotations

from slowfast_deploy.live.events import DeliveryReport as DeliveryReport
from slowfast_deploy.live.events import Event as Event
from slowfast_deploy.live.events import SegmentEndEvent as SegmentEndEvent
from slowfast_deploy.live.events import SegmentStartEvent as SegmentStartEvent
from slowfast_deploy.live.events import StatsEvent as StatsEvent
from slowfast_deploy.live.events import StreamEvent as StreamEvent
from slowfast_deploy.live.events import WindowEvent as WindowEvent
from slowfast_deploy.live.run import OpenModel as OpenModel
from slowfast_deploy.live.run import Watch as Watch
from slowfast_deploy.live.run import WatchOptions as WatchOptions
from slowfast_deploy.live.run import watch as watch
from slowfast_deploy.live.sinks import JsonLinesSink as JsonLinesSink
from slowfast_deploy.live.sinks import Sink as Sink
from slowfast_deploy.live.sinks import SubtitleSink as SubtitleSink
from slowfast_deploy.live.sinks import WebhookSink as WebhookSink
from slowfast_deploy.live.sources import Source as Source
from slowfast_deploy.live.sources import StreamError as StreamError
from slowfast_deploy.live.sources import parse_source as parse_source
from slowfast_deploy.live.sources import read_sources_file as read_sources_file
